"""``satimp-lab reproduce``: execute every notebook headless, then write the report.

Each notebook has one cell tagged ``parameters`` (``SIZE``, ``TIER``, ``OUT_DIR``); like papermill,
we insert a cell after it that overrides those values, execute the notebook with nbclient, and
save the executed copy. Notebooks run side by side, one per core by default, each in its own
worker process (nothing of one kernel's client is shared with another's) and each kernel pinned to
its share of the cores (one torch thread each on two cores: two kernels of two threads each slow
each other many times over, two of one thread do not). Sweeps are cached
(``satimp_lab.experiments``), so a second run is fast.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import cast

from ..errors import InputError
from ..resources import shipped_path
from ..store import atomic_write, cache_dir, entry_lock
from ..tiers import PRETRAINED_TIERS

_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # colour codes in tracebacks

NOTEBOOK_DIR = shipped_path("notebooks")
"""The notebooks: ``notebooks/`` in the checkout, or the copy inside an installed wheel
(:func:`satimp_lab.resources.shipped_path`)."""


def list_notebooks(folder: str | Path = NOTEBOOK_DIR) -> list[Path]:
    """The numbered notebooks (``01_tour.ipynb`` ...), in order."""
    found = sorted(Path(folder).glob("[0-9][0-9]_*.ipynb"))
    if not found:
        raise FileNotFoundError(f"no numbered notebooks in {folder}")
    return found


def select_notebooks(notebooks: list[str] | None = None, notebook_dir: str | Path = NOTEBOOK_DIR) -> list[Path]:
    """The numbered notebooks in ``notebook_dir`` whose names start with one of ``notebooks``
    (all when None), in order.

    Raises :class:`~satimp_lab.errors.InputError` (a ``ValueError``; one line in the CLI) naming
    every selection that matches no notebook, and the valid names; ``FileNotFoundError`` if the
    folder has no numbered notebook.
    """
    available = list_notebooks(notebook_dir)
    if notebooks is None:
        return available
    valid = ", ".join(p.stem for p in available)
    if not notebooks:
        raise InputError(f"no notebook selected (--only without names); valid: {valid}")
    unmatched = [n for n in notebooks if not any(p.stem.startswith(str(n)) for p in available)]
    if unmatched:
        raise InputError(f"no notebook name starts with {', '.join(map(repr, unmatched))} "
                         f"(--only); valid: {valid}")
    return [p for p in available if any(p.stem.startswith(str(n)) for n in notebooks)]


def inject_parameters(nb, parameters: dict) -> None:
    """Insert a cell overriding ``parameters`` right after the cell tagged ``parameters``."""
    import nbformat

    index = next((i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])),
                 None)
    if index is None:
        raise ValueError("the notebook has no cell tagged 'parameters'")
    source = "# Parameters injected by satimp-lab reproduce\n" + "".join(
        f"{name} = {value!r}\n" for name, value in parameters.items())
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]})
    nb.cells.insert(index + 1, cell)


SKIPPED_IMPORTS = ("rfc3987_syntax",)
"""Modules that the notebook kernels and workers mark as absent (see :data:`KERNEL_STARTUP`)."""

KERNEL_STARTUP = tuple(f"import sys; sys.modules.setdefault({name!r}, None)" for name in SKIPPED_IMPORTS)
"""Lines each kernel runs before the notebook, invisible in it. Displaying a plotly figure
imports nbformat, hence jsonschema, whose optional IRI format checker ``rfc3987_syntax`` builds
some twenty Earley parsers at import (~2 CPU seconds per kernel); nothing a notebook does
validates IRIs, so the kernels skip that import (jsonschema then leaves IRI formats unchecked)."""


def kernel_env(threads: int, workers: int | None = None) -> dict:
    """The environment of a notebook kernel: this process's, with ``threads`` torch/OpenMP/MKL
    threads and ``workers`` sweep workers (``$SATIMP_LAB_WORKERS``; default ``threads``)."""
    from ..experiments.pool import WORKERS_ENV

    return {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
            WORKERS_ENV: str(workers or threads), "TOKENIZERS_PARALLELISM": "false"}


HEADLESS_WIDGET_REGISTRY: dict = {}
"""The widget models whose front end the executing client mimics: none. nbclient's default
mimic of an ipywidgets ``Output`` widget writes the widget's state back to the kernel on the shell
channel while the client awaits the cell's reply on that same socket, and a notebook can stall
there until its cell timeout (docs/speed.md, 2026-11-30). Without the mimic the client never
writes to the kernel during a cell; the executed notebook then keeps no copy of what an ``Output``
shows (ipywidgets keeps it in the widget), which a static report does not show anyway."""


KERNEL_TRANSPORT = "ipc"
"""How a kernel and its client talk: ZeroMQ over Unix sockets in a folder of the kernel's own
(:func:`notebook_client`), not TCP. With TCP the client picks free ports and releases them for the
kernel to bind a second later, so a kernel started in another process meanwhile can take one and
the first kernel dies before it replies to ``kernel_info``; a socket file in a private folder
cannot be taken. ipykernel also warns once per kernel that TCP is unencrypted; over ipc it does not."""

SOCKET_PATH_MAX = 100
"""Longest ipc socket path used (Linux allows 107 bytes, macOS 103); a longer temporary folder
falls back to TCP."""


def notebook_client(nb, folder: Path, timeout: int | None):
    """The nbclient ``NotebookClient`` that executes ``nb`` in ``folder``: the python3 kernel with
    :data:`KERNEL_STARTUP`, ``timeout`` seconds per cell, no widget front end mimicked
    (:data:`HEADLESS_WIDGET_REGISTRY`), and its connection file and sockets in a new temporary
    folder (:data:`KERNEL_TRANSPORT`), removed with the client."""
    import shutil
    import tempfile
    import weakref

    from nbclient import NotebookClient
    from traitlets.config import Config

    sockets = tempfile.mkdtemp(prefix="satimp-kernel-")
    connection_file = os.path.join(sockets, "kernel.json")
    transport = KERNEL_TRANSPORT if len(sockets) + len("/kernel-ipc-99") <= SOCKET_PATH_MAX else "tcp"
    config = Config({"KernelManager": {"transport": transport, "connection_file": connection_file}})
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", config=config,
                            resources={"metadata": {"path": str(folder)}},
                            extra_arguments=[f"--IPKernelApp.exec_lines={list(KERNEL_STARTUP)!r}"])
    client.widget_registry = dict(HEADLESS_WIDGET_REGISTRY)  # a plain attribute that __init__ sets
    weakref.finalize(client, shutil.rmtree, sockets, ignore_errors=True)
    return client


def execute_notebook(path: str | Path, output: str | Path, parameters: dict,
                     timeout: int | None = 1200, env: dict | None = None) -> dict:
    """Execute one notebook with ``parameters``; write the executed copy to ``output`` (also on
    error, so the failing cell can be read). ``timeout``: seconds per cell (None: no limit).
    ``env``: the kernel's environment (default: this process's; see :func:`kernel_env`).
    A kernel that dies or fails to start before it is ready is replaced once (no cell has run, so
    nothing is run twice); a failure after that is the notebook's.
    Returns ``{name, status, seconds, error, output}``; never raises for a broken notebook: one
    that cannot be read, has no ``parameters`` cell, or fails in a cell has status ``"error"`` and
    the message (``output`` is ``""`` when there is no notebook to write)."""
    import nbformat
    from nbclient.exceptions import CellExecutionError

    path, output = Path(path), Path(output)
    start = time.perf_counter()
    status, error, nb = "ok", "", None
    try:
        nb = nbformat.read(path, as_version=4)
        inject_parameters(nb, parameters)
        for attempt in (1, 2):
            client = notebook_client(nb, path.parent, timeout)
            ready: list[bool] = []  # nbclient calls on_notebook_start once the kernel answered kernel_info
            client.on_notebook_start = lambda *, _ready=ready, **_: _ready.append(True)
            try:
                client.execute(**({"env": env} if env is not None else {}))
                break
            except Exception as err:
                cleanup = getattr(client, "_cleanup_kernel", None)
                if not ready and cleanup is not None:  # nbclient shut that kernel down but left its exit hook
                    atexit.unregister(cleanup)
                if ready or attempt == 2:
                    raise
                print(f"{path.stem}: the kernel failed before it was ready ({type(err).__name__}: {err}); "
                      "starting another", file=sys.stderr, flush=True)
    except CellExecutionError as err:
        lines = _ANSI.sub("", str(err)).strip().splitlines()
        status, error = "error", lines[-1] if lines else repr(err)
    except Exception as err:  # noqa: BLE001 -- a dead kernel or timeout is a failed notebook too
        status, error = "error", f"{type(err).__name__}: {err}"
    seconds = time.perf_counter() - start
    if nb is None:
        return {"name": path.stem, "status": status, "seconds": seconds, "error": error, "output": ""}
    atomic_write(output, lambda tmp: nbformat.write(nb, str(tmp)))
    return {"name": path.stem, "status": status, "seconds": seconds, "error": error, "output": str(output)}


PAPER_STUDIES = ("obs1", "obs2", "smoothness", "granularity", "grid")
"""The studies ``reproduce --tier paper`` decides: the paper's observations and the SatImp grid
(the relearning study's attacks are sized for the tiny tier). On a benchmark without key-token
annotations (real TOFU) the annotated parts are left out (``studies.without_annotations``)."""


def reproduce(out_dir: str | Path = "reports/latest", fast: bool = False, tier: str | None = None,
              notebooks: list[str] | None = None, notebook_dir: str | Path = NOTEBOOK_DIR,
              cell_timeout: int | None | str = "auto", workers: int | None = None,
              base_model: str | None = None, source: str = "synthetic", data_dir: str | None = None,
              lora: dict | None = None) -> int:
    """Run the notebooks (all, or those whose names start with one of ``notebooks``) and write
    ``out_dir/report.md``. ``tier`` None keeps each size's own tier (tiny for the full run,
    micro for ``fast``). ``cell_timeout``: seconds per notebook cell, None for no limit;
    ``"auto"`` is 1200 s (a stuck tiny-tier cell) and no limit for the pretrained tiers.
    ``workers``: runs computed at once by the studies' sweep and notebooks executed at once
    (default: ``experiments.pool.default_workers()``, one per core or ``$SATIMP_LAB_WORKERS``); side by
    side, each notebook runs in its own ``spawn`` worker process (:func:`_notebook_pool`) and each
    kernel gets cores / notebooks-at-once torch threads (at least one, :func:`kernel_env`).
    ``workers=1`` runs everything one after the other in this process. Returns 0 if every
    notebook ran, 1 otherwise.

    The report is never lost: the selection is checked before anything in ``out_dir`` is touched
    (``ValueError``/``FileNotFoundError`` from :func:`select_notebooks`); a broken notebook is an
    error row of the report while the others run; an interrupted run (Ctrl-C) still writes
    ``runs.json`` and ``report.md`` for the notebooks done (the rest are "not run") and re-raises
    (a Ctrl-C in a terminal reaches the worker processes too, which stop their notebooks).
    The report lists the notebooks in their order whatever order they finished in.

    ``tier="paper"`` (with ``base_model``, and ``source="tofu"`` for the real TOFU, online or from
    ``data_dir``) decides the claims of :data:`PAPER_STUDIES` whose notebooks are selected with
    the paper's recipe (``tiers.TIER_RECIPES["paper"]``) and writes the same report; the notebooks
    themselves, sized for the tiny tier, are not executed (their rows say so). Under
    ``accelerate launch`` (several processes) each process computes its share of the runs on its
    own GPU (:class:`~satimp_lab.experiments.shards.Shards`) and the first one writes the report."""
    from ..errors import check_int
    from ..experiments.pool import cpu_cores, default_workers

    selected = select_notebooks(notebooks, notebook_dir)  # before anything is touched
    setting = {k: v for k, v in (("base_model", base_model), ("source", source), ("data_dir", data_dir))
               if v not in (None, "synthetic")}
    if tier == "paper":
        return _reproduce_paper(Path(out_dir), fast, selected, setting, lora or {})
    if setting or lora:
        raise InputError(f"reproduce: {', '.join([*setting, *(lora or {})])} applies to the paper tier only (--tier paper); "
                         f"the {tier or 'default'} tier builds its own models on the synthetic benchmark")
    check_int("reproduce", "workers", workers, minimum=1, none_ok=True)
    default_workers()  # a bad $SATIMP_LAB_WORKERS raises here, before the output is touched
    at_once = min(workers or default_workers(), len(selected))
    threads = max(1, cpu_cores() // at_once)
    env = kernel_env(threads) if at_once > 1 else None  # one at a time: this process's environment
    out_dir = _fresh_report_folder(Path(out_dir))
    size = "fast" if fast else "full"
    params = {"SIZE": size, "TIER": tier, "OUT_DIR": str(out_dir)}
    if cell_timeout == "auto":
        cell_timeout = None if tier in PRETRAINED_TIERS else 1200
    timeout = cast("int | None", cell_timeout)  # "auto", its only string, is resolved above
    runs, start = [], time.monotonic()
    try:
        studies = _run_studies(size, tier, [p.stem for p in selected], out_dir, workers)
        runs += [studies] if studies else []
        jobs = [(path, out_dir, params, timeout, env, start) for path in selected]
        if at_once == 1:
            for job in jobs:
                runs.append(_execute_and_log(*job))
        else:
            print(f"executing {len(selected)} notebooks, {at_once} at a time (one process each), "
                  f"{threads} torch thread(s) each", flush=True)
            with _notebook_pool(at_once) as pool:
                futures = [pool.submit(_execute_and_log, *job) for job in jobs]
                try:
                    for future in futures:
                        future.result()  # raises a notebook's interruption here
                finally:  # the notebooks that finished keep their rows, in notebook order
                    for future in futures:
                        future.cancel()
                    runs += [f.result() for f in futures
                             if f.done() and not f.cancelled() and f.exception() is None]
    except BaseException as err:  # Ctrl-C or a failing kernel manager: report what ran, then stop
        done = {r["name"] for r in runs}
        runs += [{"name": p.stem, "status": "not run", "seconds": 0.0, "output": "",
                  "error": f"interrupted ({type(err).__name__})"} for p in selected if p.stem not in done]
        order = {p.stem: i for i, p in enumerate(selected)}
        runs.sort(key=lambda r: order.get(r["name"], -1))  # the studies' row first
        _write_report(out_dir, runs, size, tier, time.monotonic() - start)
        raise
    return _write_report(out_dir, runs, size, tier, time.monotonic() - start)


def _fresh_report_folder(out_dir: Path) -> Path:
    """``out_dir`` resolved and created, emptied of an earlier report's results (its claims,
    population, tables and figures): a report shows this run's results only."""
    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("claims", "population", "tables", "figures"):
        folder = out_dir / stale
        if folder.exists():
            for f in folder.iterdir():
                f.unlink()
    return out_dir


def _reproduce_paper(out_dir: Path, fast: bool, selected: list[Path], setting: dict, lora: dict) -> int:
    """:func:`reproduce` at the paper tier: the studies only, on one process or as one of the
    processes of ``accelerate launch`` (each computes its share of the runs; the first writes the
    report). ``lora``: ``lora_*`` fields of every run's UnlearnConfig (a 7B model on one 80 GB GPU).
    Returns 0 when the studies ran, 1 otherwise (0 on the other processes)."""
    from dataclasses import replace

    from ..experiments.lab import Lab
    from ..experiments.setting import get_setting
    from ..experiments.shards import Shards

    size = "fast" if fast else "full"
    chosen = get_setting(size, tier="paper", **setting)  # checks the setting before any work
    lab = Lab(replace(chosen, base=replace(chosen.base, **lora)) if lora else chosen, progress=True)
    shards = Shards.from_env()
    if shards.world > 1:
        shards.detach()
    out_dir = _fresh_report_folder(out_dir) if shards.rank == 0 else out_dir.resolve()
    start = time.monotonic()
    names = [p.stem for p in selected]
    studies = _run_studies(size, "paper", names, out_dir, workers=1, lab=lab,
                           executor=shards if shards.world > 1 else "serial", save=shards.rank == 0)
    if shards.rank != 0:
        return 0
    note = starting_point_note(starting_point(lab))
    print(note.replace("**", ""), flush=True)
    if studies and studies.get("left_out"):  # what this benchmark cannot decide, and why
        note += " Left out: " + "; ".join(studies["left_out"]) + "."
    runs = [studies] if studies else []
    runs += [{"name": name, "status": "not run", "seconds": 0.0, "output": "",
              "error": "paper tier: the studies decide its claims; the notebook is sized for the tiny tier"}
             for name in names]
    return _write_report(out_dir, runs, size, "paper", time.monotonic() - start, setting, extra_note=note)


def starting_point(lab) -> dict:
    """Where the Lab's target model starts: forget and retain ES and mean answer-token
    log-likelihood at step 0, as every run's first evaluation reads them (the same rows,
    ``unlearning.loop.eval_subset``, and the same teacher-forced pass), and its answer-token
    accuracy on its fine-tuning rows (``ModelBundle.report``)."""
    from ..data.batching import encode_dataset
    from ..data.schema import retain_split_for
    from ..models.reading import teacher_forced_summary
    from ..unlearning.loop import eval_subset

    target, base = lab.target, lab.setting.base
    out = {"answer_accuracy": float(target.report.get("answer_accuracy", float("nan")))}
    for role, split in (("forget", lab.setting.forget_split), ("retain", retain_split_for(lab.setting.forget_split))):
        encoded = encode_dataset(target.tokenizer, lab.benchmark[split], target.tier.prompt_format)
        summary = teacher_forced_summary(target.model, eval_subset(encoded, base.eval_max_examples),
                                         target.tokenizer.pad_token_id, base.eval_batch_size)
        out.update({f"{role}_es": summary["es"], f"{role}_mean_logp": summary["mean_logp"]})
    return out


MEMORISED_AT_LEAST = 0.2
"""Retain ES at step 0 below which the paper tier's report warns that the target has not learned
its answers: every run then "reaches" the matched level at once and the comparisons are empty."""


def starting_point_note(point: dict) -> str:
    """The report's sentence on :func:`starting_point`, with a warning when the target reproduces
    too little of its answers for forget ES at matched retain to mean anything."""
    text = (f"The target starts at forget ES {point['forget_es']:.3f} and retain ES {point['retain_es']:.3f} "
            f"(teacher-forced, step 0 of every run), answer-token accuracy {point['answer_accuracy']:.3f} on "
            f"its fine-tuning rows.")
    if not point["retain_es"] >= MEMORISED_AT_LEAST:
        text += (f" **Warning: the target has not learned its answers** (retain ES below "
                 f"{MEMORISED_AT_LEAST}): every run reaches the matched level at once, so the comparisons "
                 f"below say nothing about the methods. Fine-tune longer (`satimp-lab train --epochs`, "
                 f"`--lr`) or start from a fine-tuned model.")
    return text


def _notebook_pool(at_once: int) -> concurrent.futures.Executor:
    """The pool that executes notebooks side by side: ``at_once`` worker processes started with
    ``spawn``, so that no two kernels' clients share a process (zmq context, event loop,
    jupyter_client's port cache); nbclient's ``Output`` mimic is off (:data:`HEADLESS_WIDGET_REGISTRY`)."""
    import multiprocessing

    return concurrent.futures.ProcessPoolExecutor(at_once, mp_context=multiprocessing.get_context("spawn"),
                                                  initializer=_worker_startup)


def _worker_startup() -> None:
    """A notebook worker skips the kernels' slow imports too (:data:`SKIPPED_IMPORTS`): it reads
    and writes notebooks with nbformat, whose notebook schema checks no IRI."""
    for name in SKIPPED_IMPORTS:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]  # None: importing it fails at once


def _execute_and_log(path: Path, out_dir: Path, params: dict, cell_timeout: int | None,
                     env: dict | None, start: float) -> dict:
    """:func:`execute_notebook` into ``out_dir/notebooks/``, with a progress line before and after
    (seconds since ``start``, a ``time.monotonic()`` reading: the same clock in every process).
    Returns its record with ``output`` relative to ``out_dir``. A function of this module (not a
    closure) so that a worker process can run it."""
    print(f"[{time.monotonic() - start:6.1f}s] running {path.name} ...", flush=True)
    run = execute_notebook(path, out_dir / "notebooks" / path.name, params, cell_timeout, env=env)
    run["output"] = str(Path(run["output"]).relative_to(out_dir)) if run["output"] else ""
    print(f"[{time.monotonic() - start:6.1f}s] {path.stem}: {run['status']} in "
          f"{run['seconds']:.1f}s {run['error']}", flush=True)
    return run


def _write_report(out_dir: Path, runs: list[dict], size: str, tier: str | None, total: float,
                  setting: dict | None = None, extra_note: str = "") -> int:
    """``runs.json`` (first: it survives a failing report) and ``report.md``; prints a summary.
    ``setting``: the paper tier's Setting fields (base model, source, data folder), named in the
    report. Returns 1 if a notebook (or the studies) did not run or a claim file could not be
    read, else 0; at the paper tier, notebooks are "not run" by design and do not count."""
    from .report import build_report, scale_note

    setting = setting or {}
    atomic_write(out_dir / "runs.json", json.dumps(runs, indent=1))
    problems: list[str] = []
    report = build_report(out_dir, runs, {"size": size, "tier": tier or "default", **setting,
                                          "total seconds": f"{total:.0f}"}, problems=problems,
                          note=" ".join(filter(None, [scale_note(size, tier, **setting), extra_note])))
    failed = [r["name"] for r in runs if r["status"] != "ok" and not (tier == "paper" and r["status"] == "not run")]
    notebooks = [r for r in runs if not r["name"].startswith("studies (")]  # the studies' row is no notebook
    ran = sum(r["status"] == "ok" for r in notebooks)
    done = ("the studies only: the notebooks are the tiny tier's" if tier == "paper"
            else f"{ran}/{len(notebooks)} notebooks ran")
    print(f"report: {report} ({total:.0f} s; {done}"
          + (f"; failed: {', '.join(failed)}" if failed else "")
          + (f"; {len(problems)} unreadable claim file(s)" if problems else "") + ")")
    return 1 if failed or problems else 0


def _run_studies(size: str, tier: str | None, notebook_names: list[str], out_dir: Path,
                 workers: int | None = None, lab=None, executor=None, save: bool = True) -> dict | None:
    """Decide the claims of the declared studies (``satimp_lab.studies.STUDIES``) whose notebook
    is among ``notebook_names``, before any notebook runs: the report's claim table comes from
    them, not from whichever cells ran. Every study's runs are swept in one pass
    (``studies.run_studies``) on ``workers`` processes (None: the default pool; 1: in this
    process). Returns a run record like :func:`execute_notebook`'s
    (an error is recorded, not raised, so the report is still written); None when no study is chosen.

    ``lab``: the Lab to run them on (default: the size's, with ``tier``); at the paper tier the
    studies are :data:`PAPER_STUDIES`, without their annotated parts when the benchmark has no
    key-token annotations. ``executor``: overrides the one ``workers`` picks (e.g. a
    :class:`~satimp_lab.experiments.shards.Shards`). ``save``: write the claims, tables and figures
    (False on the processes of a launch but the first)."""
    from ..experiments.lab import Lab
    from ..experiments.pool import process_pool
    from ..studies import STUDIES, run_studies, without_annotations

    chosen = [s for s in STUDIES if s.notebook in notebook_names
              and (tier != "paper" or s.id in PAPER_STUDIES)]
    if not chosen:
        return None
    start, status, error = time.perf_counter(), "ok", ""
    notes: list[str] = []
    try:
        lab = lab or Lab(size, progress=True, **({"tier": tier} if tier else {}))
        if tier == "paper":
            # fine-tuned (or read from the cache) before any run; under a launch, by one process
            # while the others wait for the lock and then read them from the cache
            (cache_dir() / "models").mkdir(parents=True, exist_ok=True)
            with entry_lock(cache_dir() / "models" / "paper-fine-tuning", timeout=-1):
                _ = lab.target, lab.retain_model
            forget = lab.benchmark[lab.setting.forget_split]
            if not any(spans for spans in forget["key_spans"]):
                chosen, notes = without_annotations(chosen)
        print(f"deciding the claims of {len(chosen)} studies on the population ...", flush=True)
        for note in notes:
            print(f"  {note}", flush=True)
        target = out_dir if save else None
        if executor is not None:
            run_studies(lab, chosen, out_dir=target, executor=executor)
        elif workers is None or workers == 1:
            run_studies(lab, chosen, out_dir=target, executor="processes" if workers is None else "serial")
        else:
            with process_pool(workers) as pool:
                run_studies(lab, chosen, out_dir=target, executor=pool)
    except Exception as err:  # noqa: BLE001 -- recorded in the report's run table
        status, error = "error", f"{type(err).__name__}: {err}"
    return {"name": "studies (" + ", ".join(s.id for s in chosen) + ")", "status": status,
            "seconds": time.perf_counter() - start, "error": error, "output": "population/",
            **({"left_out": notes} if notes else {})}


if __name__ == "__main__":
    sys.exit(reproduce(fast="--fast" in sys.argv))
