"""The unlearning stage: per-token weights (``weighting``), every hyper-parameter
(``params``), loss terms and named methods (``objectives``), the loop (``loop``), its
per-token trace (``tracing``), and what the weights look like: the analytic curves w(p)
(``weight_curves``) and statistics of traced weights (``weight_stats``).
"""
