"""``satimp-lab reproduce`` never loses the report: a bad selection touches nothing, a broken
notebook is an error row while the others run and the report is written. Tiny synthetic notebooks
(no torch) in a temporary folder."""

from __future__ import annotations

import concurrent.futures
import json
import os

import nbformat
import pytest

from satimp_lab.mainjob.reproduce import reproduce, select_notebooks

GOOD = """from pathlib import Path
folder = Path(OUT_DIR) / "figures"
folder.mkdir(parents=True, exist_ok=True)
(folder / "01_plot.png").write_bytes(b"png")
print("ran with", SIZE)
"""


def _notebook(path, cells):
    nb = nbformat.v4.new_notebook()
    for source, tags in cells:
        nb.cells.append(nbformat.v4.new_code_cell(source, metadata={"tags": tags}))
    nbformat.write(nb, path)


@pytest.fixture
def notebooks(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    params = ('SIZE = "full"\nTIER = None\nOUT_DIR = None\n', ["parameters"])
    _notebook(folder / "01_good.ipynb", [params, (GOOD, [])])
    _notebook(folder / "02_no_parameters.ipynb", [("x = 1\n", [])])
    _notebook(folder / "03_raises.ipynb", [params, ("raise RuntimeError('boom in 03')\n", [])])
    _notebook(folder / "04_good_too.ipynb", [params, ("print(SIZE)\n", [])])
    return folder


@pytest.fixture
def previous_report(tmp_path):
    out = tmp_path / "report"
    (out / "figures").mkdir(parents=True)
    (out / "figures" / "01_old.png").write_bytes(b"old")
    (out / "report.md").write_text("![old](figures/01_old.png)\n")
    return out


@pytest.mark.parametrize("only, named", [(["99"], "'99'"), (["01", "7x"], "'7x'"), ([], "without names")])
def test_a_bad_selection_touches_nothing(notebooks, previous_report, only, named):
    with pytest.raises(ValueError, match=named) as err:
        reproduce(previous_report, fast=True, notebooks=only, notebook_dir=notebooks)
    message = str(err.value)
    assert "\n" not in message and "valid: 01_good, 02_no_parameters, 03_raises, 04_good_too" in message
    assert (previous_report / "figures" / "01_old.png").read_bytes() == b"old"
    assert (previous_report / "report.md").exists()


def test_selection_by_prefix(notebooks):
    assert [p.stem for p in select_notebooks(["03", "01"], notebooks)] == ["01_good", "03_raises"]
    assert len(select_notebooks(None, notebooks)) == 4


def test_broken_notebooks_are_error_rows_and_the_report_is_written(notebooks, previous_report):
    status = reproduce(previous_report, fast=True, notebook_dir=notebooks, cell_timeout=120)
    assert status == 1
    runs = {r["name"]: r for r in json.loads((previous_report / "runs.json").read_text())}
    assert [runs[n]["status"] for n in sorted(runs)] == ["ok", "error", "error", "ok"]
    assert "no cell tagged 'parameters'" in runs["02_no_parameters"]["error"]
    assert "boom in 03" in runs["03_raises"]["error"]
    report = (previous_report / "report.md").read_text()
    assert "| 02_no_parameters | error |" in report and "| 04_good_too | ok |" in report
    assert "figures/01_plot.png" in report and "01_old" not in report  # this run's figures only
    assert (previous_report / "notebooks" / "03_raises.ipynb").exists()  # the failing cell can be read


def test_an_unreadable_claim_file_is_a_problem_row_not_a_lost_report(notebooks, tmp_path):
    folder = tmp_path / "one"
    folder.mkdir()
    claim = ('from pathlib import Path\n(Path(OUT_DIR) / "population").mkdir(parents=True, exist_ok=True)\n'
             '(Path(OUT_DIR) / "population" / "bad.json").write_text("{")\n')
    _notebook(folder / "01_bad_claim.ipynb",
              [('SIZE = "full"\nTIER = None\nOUT_DIR = None\n', ["parameters"]), (claim, [])])
    out = tmp_path / "out"
    assert reproduce(out, fast=True, notebook_dir=folder, cell_timeout=120) == 1
    report = (out / "report.md").read_text()
    assert "## Problems" in report and "cannot read claim file" in report and "bad.json" in report


def test_an_interrupted_run_still_writes_the_report(notebooks, tmp_path, monkeypatch):
    from satimp_lab.mainjob import reproduce as rep

    def execute(path, output, parameters, timeout=None, env=None):
        if path.stem.startswith("02"):
            raise KeyboardInterrupt
        return {"name": path.stem, "status": "ok", "seconds": 0.1, "error": "", "output": ""}

    monkeypatch.setattr(rep, "execute_notebook", execute)
    monkeypatch.setattr(rep, "_notebook_pool", concurrent.futures.ThreadPoolExecutor)  # sees the fake
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        rep.reproduce(out, fast=True, notebook_dir=notebooks, workers=1)
    runs = json.loads((out / "runs.json").read_text())
    assert [(r["name"][:2], r["status"]) for r in runs] == [("01", "ok"), ("02", "not run"),
                                                            ("03", "not run"), ("04", "not run")]
    assert "interrupted (KeyboardInterrupt)" in (out / "report.md").read_text()
    # side by side: the notebooks that finished keep their rows, the report keeps notebook order
    with pytest.raises(KeyboardInterrupt):
        rep.reproduce(out, fast=True, notebook_dir=notebooks, workers=2)
    runs = json.loads((out / "runs.json").read_text())
    assert [r["name"][:2] for r in runs] == ["01", "02", "03", "04"]
    assert runs[0]["status"] == "ok" and runs[1]["status"] == "not run"


def test_notebooks_side_by_side_keep_their_order_and_get_one_thread_each(notebooks, tmp_path, monkeypatch):
    import threading
    import time

    from satimp_lab.mainjob import reproduce as rep

    seen, both = [], threading.Barrier(2, timeout=30)

    def execute(path, output, parameters, timeout=None, env=None):
        seen.append((path.stem, env and env["OMP_NUM_THREADS"], env and env["SATIMP_LAB_WORKERS"]))
        if path.stem[:2] in ("01", "02"):
            both.wait()  # 01 and 02 run at the same time (this would time out one at a time)
        if path.stem.startswith("01"):
            time.sleep(0.2)  # 01 finishes after 02: the report still lists it first
        return {"name": path.stem, "status": "error" if "raises" in path.stem else "ok",
                "seconds": 0.1, "error": "boom" if "raises" in path.stem else "", "output": ""}

    monkeypatch.setattr(rep, "execute_notebook", execute)
    monkeypatch.setattr(rep, "_notebook_pool", concurrent.futures.ThreadPoolExecutor)  # sees the fake
    monkeypatch.setattr(rep, "_run_studies", lambda *args: None)
    monkeypatch.setattr("satimp_lab.experiments.pool.cpu_cores", lambda: 2)
    out = tmp_path / "side"
    assert rep.reproduce(out, fast=True, notebook_dir=notebooks, workers=2) == 1
    runs = json.loads((out / "runs.json").read_text())
    assert [(r["name"][:2], r["status"]) for r in runs] == [("01", "ok"), ("02", "ok"), ("03", "error"),
                                                            ("04", "ok")]
    assert {(threads, workers) for _, threads, workers in seen} == {("1", "1")}
    with pytest.raises(ValueError, match="workers"):
        rep.reproduce(out, fast=True, notebook_dir=notebooks, workers=0)


def _printed(path):
    """What an executed notebook's last cell printed (its stream outputs joined: the kernel may
    send one print in several messages)."""
    cell = nbformat.read(path, as_version=4).cells[-1]
    return "".join(o["text"] for o in cell.outputs if o["output_type"] == "stream")


MEET = """import os, time
from pathlib import Path
mine, other = Path(OUT_DIR) / "{mine}.started", Path(OUT_DIR) / "{other}.started"
mine.write_text(os.environ["JPY_PARENT_PID"] + " " + os.environ["OMP_NUM_THREADS"])
deadline = time.monotonic() + 120
while not other.exists() and time.monotonic() < deadline:  # waits for the other notebook's kernel
    time.sleep(0.05)
print("met" if other.exists() else "alone", {value} * 7)
"""


def test_real_kernels_side_by_side_run_in_their_own_processes(tmp_path):
    """Through the real code path (spawn workers, nbclient, ipykernel): two notebooks that each
    wait for the other to start both finish (so they ran at the same time), with their own
    outputs, in notebook order; each kernel's parent (``JPY_PARENT_PID``) is its own worker
    process, not this one."""
    from satimp_lab.experiments import cpu_cores

    folder = tmp_path / "notebooks"
    folder.mkdir()
    params = ('SIZE = "full"\nTIER = None\nOUT_DIR = None\n', ["parameters"])
    _notebook(folder / "01_first.ipynb", [params, (MEET.format(mine="01", other="02", value=1), [])])
    _notebook(folder / "02_second.ipynb", [params, (MEET.format(mine="02", other="01", value=2), [])])
    out = tmp_path / "out"
    assert reproduce(out, fast=True, notebook_dir=folder, cell_timeout=300, workers=2) == 0
    runs = json.loads((out / "runs.json").read_text())
    assert [(r["name"], r["status"]) for r in runs] == [("01_first", "ok"), ("02_second", "ok")]
    for run, value in zip(runs, (7, 14)):
        assert _printed(out / run["output"]) == f"met {value}\n"
    started = [(out / f"{n}.started").read_text().split() for n in ("01", "02")]
    parents = {int(pid) for pid, _ in started}
    assert len(parents) == 2 and os.getpid() not in parents
    assert {threads for _, threads in started} == {str(max(1, cpu_cores() // 2))}


def test_a_stuck_notebook_is_an_error_row_while_the_other_finishes(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    params = ('SIZE = "full"\nTIER = None\nOUT_DIR = None\n', ["parameters"])
    _notebook(folder / "01_stuck.ipynb", [params, ("import time\ntime.sleep(600)\n", [])])
    _notebook(folder / "02_quick.ipynb", [params, ("print(6 * 7)\n", [])])
    out = tmp_path / "out"
    assert reproduce(out, fast=True, notebook_dir=folder, cell_timeout=5, workers=2) == 1
    runs = json.loads((out / "runs.json").read_text())
    assert [(r["name"], r["status"]) for r in runs] == [("01_stuck", "error"), ("02_quick", "ok")]
    assert "CellTimeoutError" in runs[0]["error"]
    assert _printed(out / runs[1]["output"]) == "42\n"
    assert "| 01_stuck | error |" in (out / "report.md").read_text()


def test_the_client_does_not_mimic_an_output_widget(tmp_path):
    """The executing client mimics no widget front end, so it never writes to the kernel during
    a cell: nbclient's default ``Output`` mimic writes the widget's state back on the shell
    channel while the client awaits the cell's reply, and a reproduction stalled right after
    such a cell. With nbclient's default registry ``comm_objects`` holds the mimic and this fails."""
    from satimp_lab.mainjob.reproduce import notebook_client

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
                    "import ipywidgets as w\nout = w.Output()\ndisplay(out)\n"
                    "with out:\n    out.clear_output(wait=True)\n    print('inside the output widget')\n"),
                nbformat.v4.new_code_cell("print('the next cell ran')\n")]
    client = notebook_client(nb, tmp_path, timeout=120)
    client.execute()
    assert client.comm_objects == {}
    assert [o.get("text") for o in nb.cells[-1].outputs] == ["the next cell ran\n"]


def test_kernels_talk_over_private_sockets_not_tcp(tmp_path, capfd):
    """Each kernel's client connects over ipc, its socket files in a folder of its own: with TCP
    the client releases the free ports it picked for the kernel to bind, and a kernel started in
    another process meanwhile can take one (the first kernel then dies before ``kernel_info``).
    ipykernel's per-kernel "running over TCP without encryption" warning goes with it."""
    from satimp_lab.mainjob.reproduce import notebook_client

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "from ipykernel.connect import get_connection_info\n"
        "info = get_connection_info(unpack=True)\nprint(info['transport'], info['ip'])\n")])
    client = notebook_client(nb, tmp_path, timeout=120)
    client.execute()
    transport, ip = nb.cells[0].outputs[0]["text"].split()
    assert transport == "ipc" and os.path.isabs(ip) and not ip.startswith(str(tmp_path)), ip
    assert "without encryption" not in capfd.readouterr().err


def _counted_clients(monkeypatch, first_extra_arguments=None):
    """Count :func:`notebook_client` calls; the first client's kernel gets ``first_extra_arguments``."""
    import satimp_lab.mainjob.reproduce as rep

    made, original = [], rep.notebook_client

    def counted(*args, **kwargs):
        client = original(*args, **kwargs)
        if not made and first_extra_arguments is not None:
            client.extra_arguments = first_extra_arguments
        made.append(client)
        return client

    monkeypatch.setattr(rep, "notebook_client", counted)
    return made


def test_a_kernel_that_dies_before_it_is_ready_is_replaced_once(tmp_path, monkeypatch, capfd):
    from satimp_lab.mainjob.reproduce import execute_notebook

    params = ('SIZE = "full"\nTIER = None\nOUT_DIR = None\n', ["parameters"])
    _notebook(tmp_path / "01_once.ipynb", [params, ("print('ran once')\n", [])])
    made = _counted_clients(monkeypatch, ["--IPKernelApp.exec_lines=['import os; os._exit(3)']"])
    run = execute_notebook(tmp_path / "01_once.ipynb", tmp_path / "out.ipynb", {"SIZE": "fast"}, timeout=60)
    assert (run["status"], run["error"], len(made)) == ("ok", "", 2)
    assert _printed(tmp_path / "out.ipynb") == "ran once\n"
    assert "01_once: the kernel failed before it was ready" in capfd.readouterr().err


@pytest.mark.parametrize("cell, error", [("raise ValueError('in the cell')\n", "ValueError: in the cell"),
                                         ("import os\nos._exit(3)\n", "DeadKernelError")])
def test_a_notebook_that_fails_after_its_kernel_is_ready_is_not_run_again(tmp_path, monkeypatch, cell, error):
    from satimp_lab.mainjob.reproduce import execute_notebook

    params = ('SIZE = "full"\nTIER = None\nOUT_DIR = None\n', ["parameters"])
    _notebook(tmp_path / "01_fails.ipynb", [params, (cell, [])])
    made = _counted_clients(monkeypatch)
    run = execute_notebook(tmp_path / "01_fails.ipynb", tmp_path / "out.ipynb", {"SIZE": "fast"}, timeout=60)
    assert run["status"] == "error" and error in run["error"] and len(made) == 1, run


def test_a_temporary_folder_too_deep_for_a_socket_path_falls_back_to_tcp(tmp_path, monkeypatch):
    import tempfile

    from satimp_lab.mainjob.reproduce import SOCKET_PATH_MAX, notebook_client

    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    for folder, transport in ((None, "ipc"), (str(deep), "tcp")):
        monkeypatch.setattr(tempfile, "tempdir", folder)
        kernels = notebook_client(nbformat.v4.new_notebook(), tmp_path, timeout=10).config.KernelManager
        assert kernels.transport == transport
        if transport == "ipc":
            assert len(os.path.splitext(kernels.connection_file)[0] + "-ipc-99") <= SOCKET_PATH_MAX
