"""Notebook 11's views of one MUSE-shaped article: its facts highlighted, continuations with the
tokens that changed highlighted, and the token weights each scheme puts along it, with sliders.

Display only: the weights are the library's (:func:`satimp_lab.unlearning.weight_curves.token_weights_on_grid`,
which calls :mod:`satimp_lab.unlearning.weighting`), the continuations come from
:func:`satimp_lab.evaluation.muse.verbatim_memorization`, and :func:`rerun_at_match` re-runs a cached
run of a Lab (``experiments.lab.Lab``) to get the model its final metrics were computed on (the
cache keeps no model). Every HTML function escapes the text it is given.
"""

from __future__ import annotations

import difflib
import html
from collections.abc import Hashable, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from . import plots
from ..unlearning.weight_curves import token_weights_on_grid

__all__ = ["key_facts_html", "changed_tokens", "diff_html", "first_seen", "passage_reading", "PASSAGE_SCHEMES",
           "passage_weights", "passage_weights_figure", "passage_weights_widget", "rerun_at_match"]

_MONO = "font-family: monospace; white-space: pre-wrap; line-height: 1.7"


def key_facts_html(text: str, key_spans: Sequence[Sequence[int]], key_facts: Sequence[str] | None = None) -> str:
    """``text`` as HTML with every ``[start, end)`` character span of ``key_spans`` highlighted
    (a yellow ``<mark>``), its slot of ``key_facts`` (e.g. ``person``, ``date``) as a small label
    after it and as the hover text. Raises ValueError for spans that overlap, run backwards or
    leave the text, or a ``key_facts`` of another length."""
    spans = [(int(s), int(e)) for s, e in key_spans]
    if key_facts is not None and len(key_facts) != len(spans):
        raise ValueError(f"{len(spans)} key spans but {len(key_facts)} key facts")
    facts = list(key_facts) if key_facts is not None else [None] * len(spans)
    out, at = [], 0
    for (start, end), fact in sorted(zip(spans, facts), key=lambda x: x[0]):
        if not 0 <= start < end <= len(text) or start < at:
            raise ValueError(f"key span [{start}, {end}) overlaps another or leaves the text of length {len(text)}")
        out.append(html.escape(text[at:start]))
        tip = f' title="{html.escape(fact)}"' if fact else ""
        label = (f'<sub style="color: #7a6000; font-size: 70%">{html.escape(fact)}</sub>' if fact else "")
        out.append(f'<mark style="background: #ffe08a"{tip}>{html.escape(text[start:end])}</mark>{label}')
        at = end
    out.append(html.escape(text[at:]))
    return f"<div style='{_MONO}'>" + "".join(out) + "</div>"


def changed_tokens(tokens: Sequence[Hashable], reference: Sequence[Hashable]) -> list[bool]:
    """Per token of ``tokens``: True where it is not part of the longest matching blocks with
    ``reference`` (``difflib.SequenceMatcher`` without its junk heuristic), i.e. a token inserted or
    replaced relative to the reference; tokens of the reference left out are not marked here
    (:func:`diff_html` counts them)."""
    matcher = difflib.SequenceMatcher(None, list(reference), list(tokens), autojunk=False)
    changed = [True] * len(tokens)
    for block in matcher.get_matching_blocks():
        for j in range(block.b, block.b + block.size):
            changed[j] = False
    return changed


def diff_html(tokens: Sequence[str], reference: Sequence[str]) -> str:
    """``tokens`` (strings, e.g. decoded model tokens) as HTML with every token that
    :func:`changed_tokens` marks against ``reference`` on a red background; a closing note counts
    the changed tokens and those of the reference that are missing."""
    changed = changed_tokens(tokens, reference)
    matched = len(tokens) - sum(changed)
    spans = [f'<span style="background: #f4a3a3">{html.escape(t)}</span>' if c else html.escape(t)
             for t, c in zip(tokens, changed)]
    note = (f" <span style='color: #777; font-size: 80%'>[{sum(changed)} of {len(tokens)} tokens changed, "
            f"{len(reference) - matched} of the reference's missing]</span>")
    return f"<span style='{_MONO}'>" + "".join(spans) + "</span>" + note


def first_seen(trace: pd.DataFrame, example_id: int) -> pd.DataFrame:
    """The rows of a token trace (``RunResult.trace_frame``) of example ``example_id`` at the
    first step it was traced, by position. Raises ValueError when the trace never saw it."""
    rows = trace[trace["example_id"] == example_id]
    if rows.empty:
        raise ValueError(f"the trace has no token of example {example_id}")
    return rows[rows["step"] == rows["step"].min()].sort_values("position").reset_index(drop=True)


def passage_reading(bundle, row: dict, block: int = 0) -> pd.DataFrame:
    """A model's teacher-forced reading of one text row's block ``block``, encoded as the
    unlearning loop encodes it (``data.families.encode_text_dataset`` at the tier's block length):
    one row per label token, ``position, token_id, logp, p, is_key`` (the layout of a token trace
    at its step 0, for the target). ``bundle``: a ``ModelBundle`` (``.model``, ``.tokenizer``,
    ``.tier``). Raises ValueError when the row has no block ``block``."""
    import torch

    from ..data.families import encode_text_dataset
    from ..models.reading import read_rows

    tokenizer = bundle.tokenizer
    blocks = encode_text_dataset(tokenizer, [row], bundle.tier.prompt_format, bundle.tier.encode_max_length())
    if not 0 <= block < len(blocks):
        raise ValueError(f"text row {row.get('doc_id')} has {len(blocks)} block(s), not block {block}")
    model = bundle.model
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            reading = read_rows(model, [blocks[block]], tokenizer.pad_token_id, 1)[0]
    finally:
        model.train(was_training)
    logp = reading.logp.double().cpu().numpy()
    return pd.DataFrame({"position": np.arange(len(logp)), "token_id": reading.labels.cpu().numpy(),
                         "logp": logp, "p": np.exp(logp), "is_key": reading.key.cpu().numpy().astype(bool)})


PASSAGE_SCHEMES = {"simsat": "simsat(p^β_sat)", "simimp": "simimp((1-p)^β_imp)", "satimp": "satimp(p^β_sat (1-p)^β_imp)"}
"""The token-level schemes whose weights :func:`passage_weights` computes -> their legend label
(starting with the method name, so :func:`plots.color_for` gives the method's colour)."""


def passage_weights(p, beta_sat: float, beta_imp: float) -> dict[str, np.ndarray]:
    """Each scheme of :data:`PASSAGE_SCHEMES` -> its weight on every token of a passage whose
    likelihoods are ``p`` (1-D, in [0, 1]): SimSat ``p^beta_sat``, SimImp ``(1-p)^beta_imp``, SatImp
    ``p^beta_sat (1-p)^beta_imp``, by :func:`token_weights_on_grid` (the training loss's weights).
    Raises ValueError for likelihoods outside [0, 1] or a negative exponent."""
    p = np.array(p, dtype=float)  # a writable copy (torch warns about read-only arrays, e.g. a column's)
    return {scheme: token_weights_on_grid(scheme, p, beta_sat=beta_sat, beta_imp=beta_imp)
            for scheme in PASSAGE_SCHEMES}


def passage_weights_figure(tokens: Sequence[str], p, beta_sat: float, beta_imp: float, normalise: bool = True,
                           key: Sequence[bool] | None = None, prefix: int | None = None,
                           title: str | None = None) -> go.Figure:
    """The weights of :func:`passage_weights` along a passage (x: token position, hover: the token),
    one line per scheme, with the likelihood p as grey bars; ``normalise`` divides each scheme by
    its maximum on the passage (the optimiser largely cancels a global scale, so the shape is what
    differs); key tokens (``key``) get a marker on the p bars; ``prefix``: VerbMem's prompt length,
    drawn as a dotted line. Each weight trace's ``meta`` is its scheme, for :func:`passage_weights_widget`."""
    p = np.asarray(p, dtype=float)
    if len(tokens) != len(p):
        raise ValueError(f"{len(tokens)} tokens but {len(p)} likelihoods")
    x = np.arange(len(p))
    hover = [f"{i}: {t!r}" for i, t in enumerate(tokens)]
    fig = go.Figure()
    colours = ["#d9d9d9" if key is None or not k else "#ffc300" for k in (key if key is not None else [False] * len(p))]
    fig.add_trace(go.Bar(x=x, y=p, name="likelihood p of the token (key tokens yellow)", marker_color=colours,
                         hovertext=hover, opacity=0.6, meta="p"))
    for scheme, w in passage_weights(p, beta_sat, beta_imp).items():
        y = w / w.max() if normalise and w.max() > 0 else w
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name=PASSAGE_SCHEMES[scheme], hovertext=hover,
                                 line=dict(color=plots.color_for(scheme), width=2), meta=scheme))
    if prefix is not None:
        fig.add_vline(x=prefix - 0.5, line=dict(color="grey", dash="dot"),
                      annotation_text="VerbMem prompt | continuation", annotation_position="top")
    title = title or (f"Token weights along the passage at β_sat = {beta_sat:g}, β_imp = {beta_imp:g}"
                      + (" (each scheme scaled to max 1)" if normalise else ""))
    fig.update_layout(title=title, xaxis_title="token position in the passage",
                      yaxis_title=("weight (max 1) / likelihood p" if normalise else "weight w / likelihood p"),
                      template="plotly_white", legend=dict(orientation="h", y=-0.25), bargap=0.05, height=520)
    return fig


def passage_weights_widget(tokens: Sequence[str], p, key: Sequence[bool] | None = None, beta_sat: float = 5.0,
                           beta_imp: float = 0.1, prefix: int | None = None):
    """:func:`passage_weights_figure` with β_sat and β_imp sliders (the declared ranges of
    ``unlearning.params``), a normalise box, and the passage shaded by SatImp's weight at the
    sliders' values (:func:`plots.token_html`). The weights are recomputed from ``p`` (computed
    once by the caller), so the sliders redraw continuously. Returns the VBox; ``.figure``,
    ``.sliders`` and ``.redraw`` as ``widgets.family_widget``'s."""
    import ipywidgets as ipw

    from .widgets import _exponent_slider, figure_output

    p = np.asarray(p, dtype=float)
    fig = passage_weights_figure(tokens, p, beta_sat, beta_imp, key=key, prefix=prefix)
    view, show = figure_output(fig)
    s_sat = _exponent_slider(ipw, "beta_sat", beta_sat, None, "β_sat")
    s_imp = _exponent_slider(ipw, "beta_imp", beta_imp, None, "β_imp")
    norm = ipw.Checkbox(value=True, description="scale each scheme to max 1")
    shaded = ipw.HTML()

    def redraw(_=None):
        fresh = passage_weights_figure(tokens, p, s_sat.value, s_imp.value, normalise=norm.value, key=key,
                                       prefix=prefix)
        with fig.batch_update():
            for old, new in zip(fig.data, fresh.data):
                old.y = new.y
            fig.layout.title.text = fresh.layout.title.text
            fig.layout.yaxis.title.text = fresh.layout.yaxis.title.text
        w = passage_weights(p, s_sat.value, s_imp.value)["satimp"]
        shaded.value = ("<b>SatImp's weight on each token</b> (darker = more; key tokens bold and underlined): "
                        + plots.token_html(list(tokens), w.tolist(), p.tolist(),
                                           list(key) if key is not None else None))
        show()

    for w in (s_sat, s_imp, norm):
        w.observe(redraw, names="value")
    redraw()
    box = ipw.VBox([ipw.HBox([s_sat, s_imp, norm]), view, shaded])
    box.figure, box.sliders, box.redraw = fig, (s_sat, s_imp, norm), redraw
    return box


def rerun_at_match(lab, result, progress: bool = False):
    """The model a cached run of ``lab`` was scored on, made again: ``result`` (a
    ``RunResult`` of ``lab``'s own target, e.g. from ``StudyResult.target_sweep``) is re-run with its
    config and plan by ``unlearning.loop.unlearn`` (the cache keeps no model; a seeded CPU run is
    bit-identical), and its evaluation history is checked against the cached one. Returns the
    ``UnlearnRun`` (``.model`` ends where the cached run ended: its matched point for the MUSE
    study's runs). Raises RuntimeError naming the run when a reading differs (another machine's
    kernels, or a changed library)."""
    from ..experiments.pool import RUN_THREADS, torch_threads
    from ..unlearning.loop import unlearn

    with torch_threads(RUN_THREADS):
        run = unlearn(lab.target, lab.benchmark, result.config, progress=progress, plan=result.plan,
                      family=lab.setting.family)
    cached = result.history
    columns = [c for c in cached.columns if c.endswith("_es") and c in run.history]
    a = cached[["step", *columns]].dropna(subset=columns, how="all").reset_index(drop=True)
    b = run.history[["step", *columns]].dropna(subset=columns, how="all").reset_index(drop=True)
    if len(a) != len(b) or not np.allclose(a.to_numpy(float), b.to_numpy(float), atol=1e-6, equal_nan=True):
        raise RuntimeError(f"re-running {result.describe()} did not reproduce its cached readings "
                           f"({len(b)} evaluations against {len(a)}): its model is not the one scored")
    return run
