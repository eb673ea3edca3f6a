"""satimp_lab: see what loss reweighting does to LLM unlearning (SatImp, ICML 2025).

Modules, in the order data flows through them:
    benchmark   the synthetic TOFU-shaped benchmark (and the real TOFU when online)
    batching    prompts, answer-only labels, key-token masks, ``token_logprobs(model, batch)``
    models      tiny Llama / SmolLM2 / any HF model; target and retain fine-tuning; cache
    weighting   per-token weights: saturation, importance, SatImp, granularity, hard sampling
    objectives  forget and retain terms; the registry of named methods
    tracing     per-token likelihood and weight records from the training forward pass
    unlearn     the unlearning loop (accelerate: CPU, one GPU or many)
    metrics     ES, EM, TOFU metrics, forget quality, model utility, MIA
    analysis    weight-distribution statistics
    experiments cached sweeps over methods x hyper-parameters x seeds
    findings    verdicts on the paper's claims from sweep tables
    plots, widgets, report, reproduce, course, cli
"""

__version__ = "0.1.0"
