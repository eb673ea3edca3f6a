"""The model stage, by job: ``build`` (tiny Llama models and their tokenizer, pretrained models,
``ModelBundle``), ``reading`` (the one teacher-forced pass and its per-row readings: log-likelihoods,
token accuracy, ES), ``train`` (target and retain fine-tuning), ``cache`` (the model cache and the
shipped models), ``lora`` (LoRA adapters) and ``checks`` (whether a foreign model can read the
rows). Import a name from its module (``from satimp_lab.models.cache import get_model``).
"""
