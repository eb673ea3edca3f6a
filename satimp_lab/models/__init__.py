"""The model stage: tiny Llama models and their tokenizer, pretrained models, target and
retain fine-tuning and the model cache (``zoo``).
"""

# ``satimp_lab.models.zoo`` was the module that ``zoo`` is now; its names stay reachable here
# (``from satimp_lab.models.zoo import get_model``). Patch them on ``satimp_lab.models.zoo.zoo``.


import importlib


def __getattr__(name: str):
    if not name.startswith("__"):
        zoo = importlib.import_module(f"{__name__}.zoo")
        if name == "zoo":
            return zoo
        if hasattr(zoo, name):
            return getattr(zoo, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
