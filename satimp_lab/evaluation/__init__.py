"""The evaluation stage: ES, EM, the TOFU metrics and membership inference (``metrics``).
It stands below ``unlearning``: the unlearning loop evaluates while it trains.
"""
