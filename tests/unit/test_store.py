"""satimp_lab.store: atomic files, sealed and verified entries, concurrent writers and readers,
cleanup of killed writers' temporaries. Real processes, small files, no torch."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
from pathlib import Path

import numpy as np
import pytest

from satimp_lab import store
from satimp_lab.store import CacheError, atomic_directory, atomic_write, read_entry, verify_entry


def _write_files(tag: str, size: int = 20_000):
    """An entry whose two files carry the same tag: a reader can tell two generations apart."""
    def write(tmp: Path):
        (tmp / "a.txt").write_text(tag)
        (tmp / "sub").mkdir()
        (tmp / "sub" / "b.bin").write_bytes(tag.encode() * (size // max(len(tag), 1)))
    return write


def _read_files(entry: Path):
    a = (entry / "a.txt").read_text()
    b = (entry / "sub" / "b.bin").read_bytes()
    return a, b


# ----------------------------------------------------------------------------------------------
# single files


def test_atomic_write_text_bytes_and_function(tmp_path):
    atomic_write(tmp_path / "x" / "a.txt", "hello")
    atomic_write(tmp_path / "b.bin", b"\x00\x01")
    atomic_write(tmp_path / "c.npz", lambda tmp: np.savez_compressed(tmp, v=np.arange(3)))
    assert (tmp_path / "x" / "a.txt").read_text() == "hello"
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    with np.load(tmp_path / "c.npz") as data:  # the temporary kept the .npz suffix: no c.npz.npz
        assert data["v"].tolist() == [0, 1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.bin", "c.npz", "x"]


def test_written_files_and_entries_get_the_umask_mode_not_tempfiles_private_one(tmp_path):
    """tempfile makes 0600 files and 0700 folders; a report or cache entry must get the mode a
    plain open()/mkdir() gives (readable by another user, a web server, a shared cache)."""
    (tmp_path / "plain.txt").write_text("x")
    (tmp_path / "plain").mkdir()
    file_mode = (tmp_path / "plain.txt").stat().st_mode & 0o777
    dir_mode = (tmp_path / "plain").stat().st_mode & 0o777
    atomic_write(tmp_path / "a.txt", "hello")
    atomic_write(tmp_path / "c.npz", lambda tmp: np.savez_compressed(tmp, v=np.arange(3)))
    atomic_directory(tmp_path / "entry", _write_files("x"))
    for name in ("a.txt", "c.npz"):
        assert (tmp_path / name).stat().st_mode & 0o777 == file_mode, name
    assert (tmp_path / "entry").stat().st_mode & 0o777 == dir_mode


def test_atomic_write_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = atomic_write(tmp_path / "a.txt", "old")

    def boom(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(path, boom)
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["a.txt"]


# ----------------------------------------------------------------------------------------------
# sealed entries


def test_entry_round_trip_and_manifest(tmp_path):
    entry = atomic_directory(tmp_path / "e", _write_files("v1"))
    manifest = json.loads((entry / store.MANIFEST).read_text())
    assert sorted(manifest["files"]) == ["a.txt", "sub/b.bin"]
    assert read_entry(entry, _read_files)[0] == "v1"
    assert read_entry(tmp_path / "absent", _read_files) is None
    assert read_entry(tmp_path / "no" / "parent", _read_files) is None


@pytest.mark.parametrize("damage, problem", [
    (lambda e: (e / "a.txt").unlink(), "a.txt: missing"),
    (lambda e: (e / "sub" / "b.bin").write_bytes((e / "sub" / "b.bin").read_bytes()[:100]), "sub/b.bin: 100 bytes"),
    (lambda e: (e / "a.txt").write_text("v2"), "a.txt: content differs"),  # same size, other bytes
    (lambda e: (e / "extra.json").write_text("{}"), "extra.json: not part of the entry"),
    (lambda e: (e / store.MANIFEST).unlink(), "manifest.json: missing"),
    (lambda e: (e / store.MANIFEST).write_text("{"), "manifest.json: unreadable"),
])
def test_a_damaged_entry_names_the_entry_and_the_file(tmp_path, damage, problem):
    entry = atomic_directory(tmp_path / "e", _write_files("v1"))
    damage(entry)
    with pytest.raises(CacheError, match=f"corrupt cached run {entry}: {problem}"):
        read_entry(entry, _read_files, what="cached run")


def test_second_writer_keeps_a_complete_entry_unless_keep_refuses(tmp_path):
    entry = atomic_directory(tmp_path / "e", _write_files("first"))
    called = []
    atomic_directory(entry, lambda tmp: called.append(tmp))
    assert not called and read_entry(entry, _read_files)[0] == "first"  # kept, nothing written
    atomic_directory(entry, _write_files("second"), keep=lambda e: False)  # stale: replaced
    assert read_entry(entry, _read_files)[0] == "second"
    (entry / "a.txt").write_text("broken")  # an incomplete entry never stands
    atomic_directory(entry, _write_files("third"))
    assert read_entry(entry, _read_files)[0] == "third"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".locks", "e"]  # no temporaries left


def test_failed_write_leaves_the_old_entry_and_no_temporary(tmp_path):
    entry = atomic_directory(tmp_path / "e", _write_files("first"))

    def boom(tmp):
        (tmp / "a.txt").write_text("half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"):
        atomic_directory(entry, boom, keep=lambda e: False)
    assert read_entry(entry, _read_files)[0] == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".locks", "e"]


def _keyed_entry(folder: Path, key: str) -> Path:
    """A sealed entry whose ``meta.json`` holds ``key``, with a larger file beside it."""
    def write(tmp: Path):
        (tmp / "meta.json").write_text(json.dumps({"key": key}))
        _write_files(key)(tmp)
    return atomic_directory(folder, write)


def _counting_hashes(monkeypatch) -> list[str]:
    """The names of the files store hashes from now on, in order."""
    hashed = []
    real = store.file_sha256

    def counting(path, *args, **kwargs):
        hashed.append(Path(path).name)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(store, "file_sha256", counting)
    return hashed


def test_a_stale_key_is_reported_before_any_other_file_is_hashed(tmp_path, monkeypatch):
    entry = _keyed_entry(tmp_path / "e", "config-A")
    hashed = _counting_hashes(monkeypatch)
    read = []
    assert read_entry(entry, read.append, key_file="meta.json", key_text="config-B") is None
    assert hashed == ["meta.json"] and not read  # the key file alone: its size and sha256, then the key
    hashed.clear()
    assert read_entry(entry, _read_files, key_file="meta.json", key_text="config-A")[0] == "config-A"
    assert sorted(hashed) == ["a.txt", "b.bin", "meta.json", "meta.json"]  # a current entry: every file
    # a stale entry's other files are not looked at: it is replaced, never served
    (entry / "sub" / "b.bin").write_bytes(b"truncated")
    assert read_entry(entry, _read_files, key_file="meta.json", key_text="config-B") is None
    with pytest.raises(CacheError, match=f"corrupt cache entry {entry}: sub/b.bin: 9 bytes"):
        read_entry(entry, _read_files, key_file="meta.json", key_text="config-A")


def _unlist(entry: Path, name: str) -> None:
    manifest = json.loads((entry / store.MANIFEST).read_text())
    del manifest["files"][name]
    (entry / store.MANIFEST).write_text(json.dumps(manifest))


@pytest.mark.parametrize("damage, problem", [
    (lambda e: (e / "meta.json").unlink(), "meta.json: missing"),
    (lambda e: (e / "meta.json").write_text(json.dumps({"key": "config-B"})), "meta.json: content differs"),
    (lambda e: (e / "meta.json").write_text("{"), "meta.json: 1 bytes"),
    (lambda e: _unlist(e, "meta.json"), "meta.json: not listed in the manifest"),
    (lambda e: (e / store.MANIFEST).unlink(), "manifest.json: missing"),
])
@pytest.mark.parametrize("wanted", ["config-A", "config-B"])
def test_a_damaged_key_file_is_reported_not_taken_for_stale(tmp_path, damage, problem, wanted):
    """Whatever key is wanted, an edited, missing or unlisted key file raises (an edit that changed
    the key is not mistaken for another configuration's entry and silently replaced)."""
    entry = _keyed_entry(tmp_path / "e", "config-A")
    damage(entry)
    with pytest.raises(CacheError, match=f"corrupt cached run {entry}: {problem}"):
        read_entry(entry, _read_files, what="cached run", key_file="meta.json", key_text=wanted)


def test_read_entry_needs_both_key_arguments(tmp_path):
    entry = _keyed_entry(tmp_path / "e", "config-A")
    with pytest.raises(ValueError, match="key_file and key_text"):
        read_entry(entry, _read_files, key_file="meta.json")


# ----------------------------------------------------------------------------------------------
# processes


def _writer(final: str, tag: str, iterations: int, replace: bool, errors) -> None:
    keep = (lambda e: False) if replace else None
    for i in range(iterations):
        try:
            atomic_directory(Path(final), _write_files(f"{tag}{i:04d}", size=4000), keep=keep)
        except Exception as err:  # noqa: BLE001 -- counted, the test asserts there are none
            errors.put(f"{type(err).__name__}: {err}")


def _reader(final: str, stop, results) -> None:
    reads = absent = corrupt = failed = mixed = 0
    first_error = ""
    while not stop.is_set():
        try:
            got = read_entry(Path(final), _read_files)
        except Exception as err:  # noqa: BLE001 -- counted: "corrupt" or another failure
            corrupt += isinstance(err, CacheError)
            failed += not isinstance(err, CacheError)
            first_error = first_error or f"{type(err).__name__}: {err}"
            continue
        if got is None:
            absent += 1
            continue
        reads += 1
        a, b = got
        if b != a.encode() * (4000 // len(a)):  # files of two generations
            mixed += 1
    results.put({"reads": reads, "absent": absent, "corrupt": corrupt, "failed": failed, "mixed": mixed,
                 "first_error": first_error})


@pytest.mark.parametrize("replace", [False, True], ids=["keep", "replace"])
def test_two_writer_processes_and_a_polling_reader(tmp_path, replace):
    """Two processes write the same entry 150 times each (``replace``: every write replaces the
    entry, the worst case; otherwise the first complete entry stands) while a third polls it:
    no writer fails and the reader never sees a valid entry as corrupt or mixed."""
    ctx = mp.get_context("spawn")
    final = str(tmp_path / "runs" / "entry")
    errors, results, stop = ctx.Queue(), ctx.Queue(), ctx.Event()
    reader = ctx.Process(target=_reader, args=(final, stop, results))
    reader.start()
    writers = [ctx.Process(target=_writer, args=(final, tag, 150, replace, errors)) for tag in "AB"]
    for w in writers:
        w.start()
    for w in writers:
        w.join(timeout=300)
    stop.set()
    reader.join(timeout=60)
    failures = []
    while not errors.empty():
        failures.append(errors.get())
    seen = results.get(timeout=30)
    assert all(w.exitcode == 0 for w in writers) and reader.exitcode == 0
    assert failures == [], f"{len(failures)} of 300 writes failed, first: {failures[0]}"
    assert seen["corrupt"] == seen["failed"] == seen["mixed"] == 0, seen
    assert seen["reads"] > 0
    verify_entry(final)
    assert sorted(p.name for p in Path(final).parent.iterdir()) == [".locks", "entry"]


def _hold_and_write(final: str, ready, release: str) -> None:
    """A writer that stops half-way through writing its temporary folder until the file
    ``release`` exists (a file, not an Event: the writer may be killed while it waits)."""
    def write(tmp: Path):
        (tmp / "a.txt").write_text("half")
        ready.set()
        deadline = time.monotonic() + 120
        while not Path(release).exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        raise SystemExit(0)
    atomic_directory(Path(final), write)


def test_leftover_temporaries_are_removed_only_once_their_writer_is_dead(tmp_path):
    ctx = mp.get_context("spawn")
    folder = tmp_path / "models"
    ready, release = ctx.Event(), tmp_path / "release"
    writer = ctx.Process(target=_hold_and_write, args=(str(folder / "slow"), ready, str(release)))
    writer.start()
    try:
        assert ready.wait(60)
        live = [p for p in folder.iterdir() if p.name.startswith(".slow.") and p.name.endswith(".tmp")]
        assert len(live) == 1
        # a killed writer of another entry, from an older version (no lock file at all)
        dead = folder / ".other.abcd1234.tmp"
        dead.mkdir()
        (dead / "a.txt").write_text("half")
        atomic_directory(folder / "fresh", _write_files("x"))  # any write cleans the folder
        assert not dead.exists()
        assert live[0].exists(), "the temporary folder of a live writer was removed"
        writer.kill()  # the OS releases its lock
        writer.join(30)
        assert store.clean_temporaries(folder) == live
        assert sorted(p.name for p in folder.iterdir()) == [".locks", "fresh"]
    finally:
        release.touch()
        if writer.is_alive():
            writer.kill()
            writer.join(10)


def test_lock_timeout_names_the_entry(tmp_path):
    ctx = mp.get_context("spawn")
    ready, release = ctx.Event(), tmp_path / "release"
    writer = ctx.Process(target=_hold_and_write, args=(str(tmp_path / "busy"), ready, str(release)))
    writer.start()
    try:
        assert ready.wait(60)
        start = time.perf_counter()
        with pytest.raises(CacheError, match=f"cache entry {tmp_path / 'busy'} is locked"):
            with store.entry_lock(tmp_path / "busy", timeout=0.2):
                pass
        assert time.perf_counter() - start < 30
    finally:
        release.touch()
        writer.join(30)
    assert writer.exitcode == 0 and not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())


def test_read_only_cache_is_read_without_a_lock(tmp_path):
    entry = atomic_directory(tmp_path / "ro" / "e", _write_files("v"))
    os.chmod(entry.parent, 0o555)
    try:
        if os.access(entry.parent, os.W_OK):
            pytest.skip("running as a user who can write to read-only folders (root)")
        assert read_entry(entry, _read_files)[0] == "v"
    finally:
        os.chmod(entry.parent, 0o755)
