"""The run engine: a setting, its runs and what they record, sweeps on any executor.

``setting`` (where runs happen), ``identity`` (what a run is: its spec, fields, label, display name),
``lab`` (runs and sweeps, cached), ``results`` (what they return), ``matched`` (forget ES at
matched retain), ``pool`` and ``shards`` (where runs are computed), ``attacks`` (relearning,
quantization and membership inference on a run's model). Studies (``satimp_lab.studies``) hold
the science built on it: docs/methods.md, "Adding a study", says how to add one.
"""

from .lab import Lab, PlanFor, population_plan
from .matched import METRIC, forget_at_matched_retain
from .pool import RUN_THREADS, SweepError, cpu_cores, default_workers, process_pool, torch_threads
from .results import MissingReading, RunResult, Sweep
from .setting import SETTINGS, TIER_RECIPES, Setting, get_setting
from .identity import NAMES, RunFields, RunSpec, display_name, display_names, run_fields, run_label, spec

__all__ = ["Lab", "PlanFor", "population_plan", "METRIC", "forget_at_matched_retain", "RUN_THREADS",
           "SweepError", "cpu_cores", "default_workers", "process_pool", "torch_threads",
           "MissingReading", "RunResult", "Sweep", "SETTINGS", "TIER_RECIPES", "Setting", "get_setting",
           "NAMES", "RunFields", "RunSpec", "display_name", "display_names", "run_fields", "run_label", "spec"]
