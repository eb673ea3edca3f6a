"""Stress test: ``satimp-lab reproduce`` executing tiny notebooks side by side, many rounds.

    OMP_NUM_THREADS=1 python benchmarks/kernels_side_by_side.py --rounds 30 --at-once 3

Each round calls :func:`satimp_lab.mainjob.reproduce.reproduce` (the real code path: kernels started by
nbclient, ``kernel_env``, ``KERNEL_STARTUP``) on ``--at-once`` tiny notebooks (no torch) with
``workers=--at-once`` and a short cell timeout, then counts the notebooks that did not finish
(status ``error``: a cell timeout, a kernel that did not start or died). It prints one line per
round and, at the end, rounds, notebooks executed, failures and the seconds per round. A round
that stalls past twice the cell timeout dumps every thread's stack (``faulthandler``), so a hang
shows where it waits. Use ``--workers 1`` for the one-at-a-time baseline. ``--real 01 02``
executes those notebooks of the lab at the fast size instead (tens of CPU seconds a round).
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import sys
import tempfile
import time
from pathlib import Path

CELL = """import os, time
print("ran", SIZE, os.environ.get("OMP_NUM_THREADS"), os.getpid())
time.sleep({sleep})
RESULT = {index} * 7
print("result", RESULT)
"""
HEAVY = """import torch
from satimp_lab.ui import plots, widgets
from satimp_lab.unlearning.objectives import get_method
print(get_method("satimp").params, torch.get_num_threads())
"""


def write_notebooks(folder: Path, count: int, sleep: float, heavy: bool = False) -> None:
    """``count`` numbered notebooks: a ``parameters`` cell and one cell printing ``index * 7``
    (``heavy``: first a cell importing torch and the lab's plotting modules, as notebook 02 does)."""
    import nbformat  # here, not at the top: the worker processes import this script again

    for index in range(1, count + 1):
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nb.cells.append(nbformat.v4.new_code_cell('SIZE = "full"\nTIER = None\nOUT_DIR = None\n',
                                                  metadata={"tags": ["parameters"]}))
        if heavy:
            nb.cells.append(nbformat.v4.new_code_cell(HEAVY))
        nb.cells.append(nbformat.v4.new_code_cell(CELL.format(sleep=sleep, index=index)))
        nbformat.write(nb, folder / f"{index:02d}_tiny.ipynb")


def printed_text(path: Path) -> str:
    """Everything the executed notebook's cells printed (stream outputs joined: the kernel may
    send one print in several messages)."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs
                   if o.get("output_type") == "stream")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30, help="rounds of reproduce (default 30)")
    parser.add_argument("--at-once", type=int, default=3, help="tiny notebooks per round (default 3)")
    parser.add_argument("--workers", type=int, default=None,
                        help="notebooks executed at once (default: --at-once; 1: one after the other)")
    parser.add_argument("--timeout", type=int, default=30, help="seconds per cell (default 30)")
    parser.add_argument("--sleep", type=float, default=0.2, help="seconds each notebook sleeps (default 0.2)")
    parser.add_argument("--heavy", action="store_true",
                        help="the notebooks import torch and the lab's plotting modules first (~3 CPU s each)")
    parser.add_argument("--real", nargs="+", default=None, metavar="NAME",
                        help="execute these notebooks of the lab (fast size) instead of tiny ones")
    args = parser.parse_args(argv)
    from satimp_lab.mainjob.reproduce import reproduce

    count = len(args.real) if args.real else args.at_once
    workers = args.workers or count
    failures, seconds = [], []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "notebooks"
        folder.mkdir()
        if args.real:
            from satimp_lab.mainjob.reproduce import NOTEBOOK_DIR
            folder = NOTEBOOK_DIR
        else:
            write_notebooks(folder, args.at_once, args.sleep, args.heavy)
        for round_ in range(1, args.rounds + 1):
            out = Path(tmp) / f"round{round_}"
            faulthandler.dump_traceback_later(2 * args.timeout + 60, repeat=True, file=sys.stderr)
            start = time.perf_counter()
            reproduce(out, fast=True, notebook_dir=folder, notebooks=args.real, cell_timeout=args.timeout,
                      workers=workers)
            seconds.append(time.perf_counter() - start)
            faulthandler.cancel_dump_traceback_later()
            runs = json.loads((out / "runs.json").read_text())
            bad = [r for r in runs if r["status"] != "ok"]
            for run in runs:  # a tiny notebook that finished has its own result printed
                if run["status"] == "ok" and not args.real:
                    printed = printed_text(out / run["output"])
                    if f"result {int(run['name'][:2]) * 7}" not in printed:
                        bad.append({**run, "status": "wrong output", "error": f"printed {printed!r}"})
            failures += [(round_, r["name"], r["status"], r["error"]) for r in bad]
            print(f"round {round_}: {seconds[-1]:.1f} s, {len(runs) - len(bad)}/{len(runs)} ok"
                  + "".join(f"; {r['name']}: {r['error'] or r['status']}" for r in bad), flush=True)
    print(f"\n{args.rounds} rounds x {count} notebooks, {workers} at once: "
          f"{len(failures)} failed notebook(s) in {len({f[0] for f in failures})} round(s); "
          f"median {sorted(seconds)[len(seconds) // 2]:.1f} s per round")
    for failure in failures:
        print("  round {}: {} {} {}".format(*failure))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
