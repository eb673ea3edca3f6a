"""The model stage, by job: ``build`` (tiny Llama models and their tokenizer, pretrained models,
``ModelBundle``), ``train`` (target and retain fine-tuning) and ``cache`` (the model cache and the
shipped models). ``zoo`` is the module before that split; it forwards every name it held.
"""

# The names of ``satimp_lab.models`` (the flat module before the stage folders) stay reachable
# here (``from satimp_lab.models import get_model``), through ``zoo``. Patch them on their home
# module (``satimp_lab.models.cache.SHIPPED_DIR``, ``satimp_lab.models.train.tqdm``).


import importlib


def __getattr__(name: str):
    if not name.startswith("__"):
        zoo = importlib.import_module(f"{__name__}.zoo")
        if name == "zoo":
            return zoo
        if hasattr(zoo, name):
            return getattr(zoo, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
