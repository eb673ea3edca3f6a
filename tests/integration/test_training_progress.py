"""Training that stops early at the key-accuracy threshold closes its notebook progress bar as
done, not as failed (tqdm draws a bar closed short of its total red, which reads as an error)."""

from dataclasses import replace

import tqdm.notebook

from satimp_lab.models import train
from satimp_lab.models.build import get_tier
from satimp_lab.models.cache import get_model


class _RecordingBar(tqdm.notebook.tqdm):
    made: list = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _RecordingBar.made.append(self)


def test_early_stop_leaves_no_red_bar(small_benchmark, monkeypatch):
    monkeypatch.setattr(train, "tqdm", _RecordingBar)  # the fine-tuning loop's bar
    tier = get_tier("micro")
    # a threshold of 1e-9 (any key token right) is reached after the first of 3 epochs
    quick = replace(tier, train=replace(tier.train, epochs=3, stop_key_accuracy=1e-9))
    bundle = get_model(small_benchmark, "target", tier=quick, progress=True, use_cache=False)
    assert bundle.report["epochs"] == 1
    bar = _RecordingBar.made[-1]
    assert bar.n == bar.total, f"the bar stopped at {bar.n} of {bar.total}"
    assert bar.container.children[1].bar_style != "danger"
