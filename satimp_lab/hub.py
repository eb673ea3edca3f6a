"""The Hugging Face Hub, as far as this package needs it: whether it is switched off
(``HF_HUB_OFFLINE``), whether it can be reached at all, and holding ``datasets`` and
``huggingface_hub`` offline for a block. Used where the real TOFU (``data.tofu``) and Hugging Face
models (``models.build``) are loaded, so that an offline machine fails at once with one line
instead of retrying the network for half a minute.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading

__all__ = ["offline", "reachable", "offline_mode"]


def offline() -> bool:
    """Hugging Face's offline switches (``HF_HUB_OFFLINE`` / ``HF_DATASETS_OFFLINE``)."""
    truthy = {"1", "on", "yes", "true"}
    if any(os.environ.get(v, "").strip().lower() in truthy for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")):
        return True
    try:
        from huggingface_hub import constants

        return bool(constants.HF_HUB_OFFLINE)
    except ImportError:  # pragma: no cover -- datasets depends on huggingface_hub
        return False


def reachable(timeout: float = 1.5) -> bool:
    """Whether a TCP connection to the Hub's endpoint opens within ``timeout`` seconds (DNS
    included: the look-up runs in a thread, so a stalled resolver cannot hang the caller)."""
    from urllib.parse import urlparse

    try:
        from huggingface_hub import constants

        url = urlparse(constants.ENDPOINT)
    except ImportError:  # pragma: no cover
        url = urlparse("https://huggingface.co")
    host, port = url.hostname or "huggingface.co", url.port or (443 if url.scheme != "http" else 80)
    ok: list[bool] = []

    def probe():
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            ok.append(True)
        except OSError:
            pass

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    return bool(ok)


@contextlib.contextmanager
def offline_mode(on: bool = True):
    """Hold ``datasets`` and ``huggingface_hub`` in offline mode for the block when ``on``:
    they read ``HF_HUB_OFFLINE`` once, at import, so a switch set later would otherwise leave them
    retrying the network for ~25 s."""
    if not on:
        yield
        return
    import datasets
    from huggingface_hub import constants

    saved = (datasets.config.HF_HUB_OFFLINE, datasets.config.HF_DATASETS_OFFLINE, constants.HF_HUB_OFFLINE)
    datasets.config.HF_HUB_OFFLINE = datasets.config.HF_DATASETS_OFFLINE = constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE, datasets.config.HF_DATASETS_OFFLINE, constants.HF_HUB_OFFLINE = saved
