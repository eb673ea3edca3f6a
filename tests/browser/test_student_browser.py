"""What a student does, in a real browser: open a notebook in JupyterLab, Run All, look at it.

JupyterLab runs on 127.0.0.1 with a token, a fresh workspace (``?reset``) and its own settings,
workspace and runtime folders (so nothing of a previous session is restored and the "news" pop-up
never asks); Chromium is driven headless by Playwright. Each test opens one notebook from a
temporary copy of ``notebooks/`` (JupyterLab's autosave must not write outputs into the
repository), runs all cells from the Run menu, waits until the kernel is idle and then checks what
the page shows: widgets are real controls, plotly figures are drawn and fill the output width with
titles that fit, a slider redraws its figure, the course shows no solution, the playground's bars
and buttons read right.

Needs Debian's ``chromium`` (``apt-get install chromium``) and ``pip install playwright`` (its own
browser download is not used: ``executable_path`` is the system Chromium). Without them the tests
are skipped with a message, except under CI (``CI=true``), where they fail.

Environment:

* ``SATIMP_LAB_BROWSER_ARTIFACTS``: where the screenshots go (default ``reports/browser``, which git
  ignores);
* ``SATIMP_LAB_BROWSER_NOTEBOOKS``: the notebook folder to test (default this checkout's
  ``notebooks/``); the kernel imports ``satimp_lab`` from that folder's parent, so an older checkout
  can be tested as a whole.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = Path(os.environ.get("SATIMP_LAB_BROWSER_NOTEBOOKS", REPO / "notebooks")).resolve()
ARTIFACTS = Path(os.environ.get("SATIMP_LAB_BROWSER_ARTIFACTS", REPO / "reports" / "browser")).resolve()
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

RUN_ALL_TIMEOUT_S = 600
"""The longest a Run All may take (08 trains its micro models on first use)."""

WIDGET_REPR = re.compile(r"\b(?:IntSlider|FloatSlider|FloatLogSlider|VBox|HBox|Button|Dropdown|FigureWidget|"
                         r"IntProgress|FloatProgress|HTML|Checkbox|BoundedIntText)\(")
"""The text an ipywidget shows when the front end cannot render it (e.g. ``IntSlider(value=3)``)."""


def _missing_browser() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright)"
    if shutil.which("chromium") is None:
        return "no chromium on PATH (apt-get install chromium)"
    return None


def _need_browser():
    why = _missing_browser()
    if why is None:
        return
    if IN_CI:
        pytest.fail(f"the browser test must run in CI, but {why}")
    pytest.skip(f"browser test skipped: {why}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_settings(folder: Path) -> None:
    """User settings: no news pop-up, every cell attached to the page (no windowing)."""
    settings = {
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                             "checkForUpdates": False},
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    }
    for name, value in settings.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))


@pytest.fixture(scope="module")
def jupyter(tmp_path_factory):
    """A JupyterLab server on 127.0.0.1 over a copy of the notebooks; yields (url, token, root)."""
    _need_browser()
    base = tmp_path_factory.mktemp("jupyterlab")
    root = base / "notebooks"
    shutil.copytree(NOTEBOOKS, root, ignore=shutil.ignore_patterns("src", ".ipynb_checkpoints"))
    for sub in ("settings", "workspaces", "runtime", "config", "cache"):
        (base / sub).mkdir()
    _write_settings(base / "settings")
    token, port = secrets.token_hex(16), _free_port()
    env = {**os.environ,
           "JUPYTERLAB_SETTINGS_DIR": str(base / "settings"), "JUPYTERLAB_WORKSPACES_DIR": str(base / "workspaces"),
           "JUPYTER_RUNTIME_DIR": str(base / "runtime"), "JUPYTER_CONFIG_DIR": str(base / "config"),
           # the kernel imports satimp_lab from the tested checkout and keeps its models apart
           "PYTHONPATH": os.pathsep.join([str(NOTEBOOKS.parent), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
           "SATIMP_LAB_CACHE": str(base / "cache"),     # a fresh cache: 08's runs are really run
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
           "MKL_NUM_THREADS": os.environ.get("MKL_NUM_THREADS", "1"),
           "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
           "--ServerApp.port_retries=0"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    log = open(base / "jupyterlab.log", "w")
    server = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not start: {(base / 'jupyterlab.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield url, token, root
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture(scope="module")
def browser(jupyter):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=shutil.which("chromium"), headless=True,
                                      args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield chromium
        chromium.close()


@pytest.fixture
def open_notebook(jupyter, browser, request):
    """open_notebook(name, parameters=None) -> the Playwright page with that notebook open and its
    kernel idle. ``parameters`` replace values in the notebook's parameters cell (e.g. SIZE)."""
    url, token, root = jupyter
    contexts = []

    def _open(name: str, parameters: dict | None = None):
        if parameters:
            _set_parameters(root / f"{name}.ipynb", parameters)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(60_000)
        page.goto(f"{url}/lab/workspaces/{name}/tree/{name}.ipynb?reset&token={token}")
        page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for()
        # the status bar reads "Python 3 (ipykernel) | Idle" once the kernel is connected; a dialog
        # (e.g. "Select Kernel" for a notebook without a kernelspec) is a failure a student would meet
        idle = page.locator(".jp-StatusBar-Widget", has_text=re.compile(r"\| Idle")).first
        dialog = page.locator(".jp-Dialog").first
        idle.or_(dialog).wait_for(timeout=120_000)
        if dialog.is_visible():
            _screenshot(page, f"{name}_dialog")
            pytest.fail(f"{name}: opening the notebook shows a dialog: {dialog.inner_text()[:200]!r}")
        return page

    yield _open
    for i, context in enumerate(contexts):   # the last view of each page, also when a check failed
        for j, page in enumerate(context.pages):
            _screenshot(page, f"{request.node.name}_final{'' if i + j == 0 else f'_{i}_{j}'}")
        context.close()


def _set_parameters(path: Path, parameters: dict) -> None:
    nb = json.loads(path.read_text())
    cell = next(c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", []))
    source = "".join(cell["source"])
    for name, value in parameters.items():
        source, n = re.subn(rf"^{name} = .*$", f"{name} = {value!r}", source, flags=re.M)
        assert n == 1, f"{path.name}: no line `{name} = ...` in the parameters cell"
    cell["source"] = source
    path.write_text(json.dumps(nb, indent=1))


# ----------------------------------------------------------------------------------------------
# what a student does


def _prompts(page) -> list[str]:
    return page.locator(".jp-NotebookPanel .jp-CodeCell .jp-InputPrompt").all_inner_texts()


def _wait_idle(page, timeout_s: float) -> None:
    """Until the kernel is idle and no cell waits to run ([*]), twice in a row half a second apart."""
    deadline, calm = time.monotonic() + timeout_s, 0
    status = None
    while time.monotonic() < deadline:
        status = page.locator(".jp-NotebookPanel .jp-Notebook-ExecutionIndicator").get_attribute("data-status")
        calm = calm + 1 if status == "idle" and not any("*" in p for p in _prompts(page)) else 0
        if calm >= 2:
            return
        page.wait_for_timeout(500)
    raise AssertionError(f"the kernel did not become idle within {timeout_s:.0f} s (status {status!r})")


def _run_all(page, name: str) -> float:
    """Run ▸ Run All Cells from the menu bar, then wait for idle. Returns the seconds it took."""
    start = time.monotonic()
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    item = page.locator(".lm-Menu-item", has_text=re.compile(r"^Run All Cells$"))
    assert "lm-mod-disabled" not in (item.get_attribute("class") or ""), f"{name}: Run All Cells is disabled"
    item.click()
    started = time.monotonic() + 60
    while all("[ ]" in p for p in _prompts(page)):       # until the first cell is queued
        assert time.monotonic() < started, f"{name}: Run All Cells started nothing within 60 s"
        page.wait_for_timeout(200)
    _wait_idle(page, RUN_ALL_TIMEOUT_S)
    page.wait_for_timeout(1500)   # let the widget views and plotly finish drawing
    prompts = _prompts(page)
    # (a cell whose input is collapsed shows an empty prompt)
    assert all(re.search(r"\[\d+\]", p) for p in prompts if p.strip()), f"{name}: not every cell ran: {prompts}"
    return time.monotonic() - start


def _screenshot(page_or_locator, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page_or_locator.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def _outputs_text(page) -> str:
    return "\n".join(page.locator(".jp-NotebookPanel .jp-OutputArea").all_inner_texts())


def _check_clean_outputs(page, name: str) -> None:
    """No error output, no widget that failed to render, no widget shown as its Python repr."""
    text = _outputs_text(page)
    assert "Error displaying widget" not in text, f"{name}: a widget failed to render"
    shown_as_text = WIDGET_REPR.findall(text)
    assert not shown_as_text, f"{name}: widgets shown as text, not controls: {shown_as_text[:5]}"
    errors = page.locator(".jp-NotebookPanel .jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    tracebacks = [t for t in errors.all_inner_texts() if "Traceback" in t or "Error" in t]
    assert not tracebacks, f"{name}: a cell raised: {tracebacks[0][:500]}"


def _figures(page):
    return page.locator(".jp-NotebookPanel .jp-OutputArea .js-plotly-plot")


def _check_figures(page, name: str) -> int:
    """Every plotly figure is drawn (has traces), fills its output area, its title fits in the
    figure and its y-axis title is inside the figure and at most 1.25 times as long as the plotting
    area is high (a little overhang into the margins reads fine; the 02 logit push's old title was
    1.5 times the plot). Returns the number of figures."""
    figures = _figures(page)
    n = figures.count()
    assert n > 0, f"{name}: no plotly figure was drawn"
    report = figures.evaluate_all("""figs => figs.map(f => {
        const svg = f.querySelector('.main-svg'); const box = svg.getBoundingClientRect();
        const area = f.closest('.jp-OutputArea-output').getBoundingClientRect();
        const rect = el => el ? el.getBoundingClientRect() : null;
        const t = rect(f.querySelector('.gtitle')), y = rect(f.querySelector('.ytitle'));
        const plot = rect(f.querySelector('.draglayer .nsewdrag')) || box;   // the plotting area
        return {traces: f.querySelectorAll('.trace').length, width: box.width, area: area.width,
                title: t && {left: t.left - box.left, right: box.right - t.right},
                ytitle: y && {top: y.top - box.top, bottom: box.bottom - y.bottom, length: y.height,
                              plot: plot.height},
                text: (f.querySelector('.gtitle') || {}).textContent || ''};
    })""")
    problems = []
    for i, fig in enumerate(report):
        where = f"figure {i + 1} of {n} ({fig['text'][:50]!r})"
        if fig["traces"] == 0:
            problems.append(f"{where} has no traces drawn")
        if fig["width"] < 0.9 * fig["area"] - 30:
            problems.append(f"{where} is {fig['width']:.0f} px wide in an output area of {fig['area']:.0f} px")
        if fig["title"] and min(fig["title"].values()) < -1:
            problems.append(f"{where}: the title is cut ({fig['title']})")
        yt = fig["ytitle"]
        if yt and (min(yt["top"], yt["bottom"]) < -1 or yt["length"] > 1.25 * yt["plot"]):
            # clipped by the figure, or reaching far past the axis it labels
            problems.append(f"{where}: the y-axis title does not fit ({yt})")
    assert not problems, f"{name}: " + "; ".join(problems)
    return n


def _trace_paths(figure) -> list[str]:
    return figure.evaluate("f => Array.from(f.querySelectorAll('.scatterlayer .trace path.js-line'))"
                           ".map(p => p.getAttribute('d'))")


def _move_slider(slider, presses: int = 10) -> None:
    """Move an ipywidgets slider with the keyboard, as a student can (focus the handle, →)."""
    handle = slider.locator(".noUi-handle").first
    handle.focus()
    for _ in range(presses):
        handle.press("ArrowRight")


def _slider_redraws(page, name: str, what: str):
    """The first output holding sliders and a plotly figure (``what`` names it in messages): it has
    at least two β sliders, and moving the first with the keyboard redraws the figure's lines.
    Returns that output's locator."""
    explorer = page.locator(".jp-NotebookPanel .jp-OutputArea-output").filter(
        has=page.locator(".widget-slider")).filter(has=page.locator(".js-plotly-plot")).first
    sliders = explorer.locator(".widget-slider")
    assert sliders.count() >= 2, f"{name}: {what} has no β sliders"
    figure = explorer.locator(".js-plotly-plot").first
    before = _trace_paths(figure)
    _move_slider(sliders.first)
    deadline = time.monotonic() + 30
    while _trace_paths(figure) == before and time.monotonic() < deadline:
        page.wait_for_timeout(200)
    assert _trace_paths(figure) != before, f"{name}: moving the β_sat slider of {what} did not change the figure"
    return explorer


# ----------------------------------------------------------------------------------------------
# the tests


def test_02_weighting_functions(open_notebook):
    page = open_notebook("02_weighting_functions")
    seconds = _run_all(page, "02")
    _screenshot(page, "02_after_run_all")
    _check_clean_outputs(page, "02")
    n = _check_figures(page, "02")
    explorer = _slider_redraws(page, "02", "the explorer")
    _screenshot(explorer, "02_explorer_after_slider")
    push = _figures(page).filter(has_text="GA logit view").first
    _screenshot(push, "02_logit_push")
    print(f"02: Run All {seconds:.1f} s, {n} figures")


def test_09_course_leaves_every_exercise_open(open_notebook):
    page = open_notebook("09_course")
    seconds = _run_all(page, "09")
    _screenshot(page, "09_after_run_all")
    _check_clean_outputs(page, "09")
    text = _outputs_text(page)
    assert "✓" not in text, ("09: after Run All an exercise shows ✓ (a solution ran): "
                             + next(line for line in text.splitlines() if "✓" in line)[:200])
    assert "○" in text, "09: no exercise says 'not attempted' after Run All"
    assert re.search(r"\b0 of \d+ exercises", text), "09: the progress does not read 0 of N after Run All"
    assert "return -(1 - p)" not in text, "09: the solution of exercise 1 is visible after Run All"
    buttons = page.locator(".jp-NotebookPanel .jp-OutputArea button", has_text="Show solution")
    assert buttons.count() > 0, "09: no 'Show solution' button"
    first = page.locator(".jp-NotebookPanel .jp-CodeCell").filter(has_text="course.solution_button(1)").first
    first.locator("button").first.click()
    page.wait_for_timeout(1000)
    assert "return -(1 - p)" in _outputs_text(page), "09: 'Show solution' did not show the first solution"
    _check_figures(page, "09")
    progress = page.locator(".jp-NotebookPanel .jp-Cell").filter(has_text="exercises correct").last
    _screenshot(progress, "09_progress")
    _screenshot(first, "09_solution_shown")
    print(f"09: Run All {seconds:.1f} s")


def test_08_playground_fast(open_notebook):
    page = open_notebook("08_playground", parameters={"SIZE": "fast"})
    seconds = _run_all(page, "08")
    _screenshot(page, "08_after_run_all")
    _check_clean_outputs(page, "08")
    danger = page.locator(".jp-NotebookPanel .jp-OutputArea .progress-bar-danger:visible")
    assert danger.count() == 0, "08: a red (failed-looking) progress bar is left after Run All"
    _check_figures(page, "08")
    form = page.locator(".jp-NotebookPanel .jp-OutputArea-output").filter(
        has=page.locator("button", has_text="Run")).first
    clear = form.locator("button", has_text="Clear comparison")
    fits = clear.evaluate("b => b.scrollWidth <= b.clientWidth + 1")
    assert fits, "08: the 'Clear comparison' label is cut"
    long_numbers = re.findall(r"\d\.\d{5,}", _outputs_text(page))
    assert not long_numbers, f"08: tables show full-precision numbers: {long_numbers[:5]}"
    run = form.locator("button", has_text=re.compile(r"^\s*Run\s*$"))
    run.click()                      # the default form: satimp at seed 0, which Run All already ran
    status = form.locator(".widget-html", has_text="✓").first
    status.wait_for(timeout=120_000)
    assert re.search(r"loaded from the cache \(the run took \d+\.\d s\)", status.inner_text()), (
        f"08: a cached rerun does not say so, or lost its cost: {status.inner_text()!r}")
    # a second satimp with another β_imp: a new run, drawn in a colour of its own
    # (typed into the slider's readout: with continuous_update=False, keys on the handle do not reach
    # the kernel until the mouse lets go)
    readout = form.locator(".widget-slider", has_text="beta_imp").locator(".widget-readout")
    readout.click()
    page.keyboard.press("Control+A")
    page.keyboard.type("0.35")
    page.keyboard.press("Enter")
    page.wait_for_timeout(500)
    run.click()
    form.locator(".widget-html", has_text="done in").first.wait_for(timeout=180_000)
    page.wait_for_timeout(1500)
    figure = form.locator(".js-plotly-plot").first
    colours = figure.evaluate("f => Array.from(f.querySelectorAll('.scatterlayer .trace path.js-line'))"
                              ".map(p => p.style.stroke)")
    names = figure.evaluate("f => Array.from(f.querySelectorAll('.legendtext')).map(t => t.textContent)")
    assert sum(n.startswith("satimp") for n in names) == 2, f"08: expected two satimp runs, legend {names}"
    lines = colours[:len(names) - 1]        # the last legend entry is the matched-retain level
    assert len(set(lines)) == len(lines), f"08: runs share a colour: {dict(zip(names, colours))}"
    _screenshot(form, "08_playground_form")
    clear.click()
    form.locator(".js-plotly-plot", has_text="no runs yet").first.wait_for(timeout=30_000)
    ticks = form.locator(".js-plotly-plot .xtick").evaluate_all("ts => ts.map(t => t.textContent)")
    assert ticks and float(ticks[0]) >= 0 and float(ticks[-1]) <= 1, f"08: empty axes read {ticks}"
    _screenshot(form, "08_playground_cleared")
    print(f"08 (fast): Run All {seconds:.1f} s")


def test_11_muse_verbatim_fast(open_notebook):
    page = open_notebook("11_muse_verbatim", parameters={"SIZE": "fast"})
    seconds = _run_all(page, "11")
    _screenshot(page, "11_after_run_all")
    _check_clean_outputs(page, "11")
    n = _check_figures(page, "11")
    text = _outputs_text(page)
    for claim in ("muse_verbmem", "muse_knowmem", "muse_privleak", "muse_saturation_beats_importance"):
        assert claim in text, f"11: the claim {claim} is not shown"
    # the β view: sliders and a figure of the weights along the passage, redrawn when β moves
    explorer = _slider_redraws(page, "11", "the β view")
    _screenshot(explorer, "11_beta_view_after_slider")
    print(f"11 (fast): Run All {seconds:.1f} s, {n} figures")
