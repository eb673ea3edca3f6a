"""The evaluation stage, by metric family: ``memorisation`` (ES, EM, calibrated ES), ``tofu``
(probability, ROUGE-L, truth ratio, forget quality, model utility) and ``privacy`` (membership
inference), all reading a model through ``reading`` (scoring over ``models.reading``'s
teacher-forced pass, and greedy generation); ``metrics`` names them and runs them on a benchmark
(``evaluate``). It stands below ``unlearning``: the unlearning loop evaluates while it trains.
"""
