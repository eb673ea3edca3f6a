"""The on-disk store: atomic writes, content-verified cache entries and writer locks.

This is the one implementation every module uses to write files that others read back:

* :func:`atomic_write` writes one file (the report's claims, tables and figures, a run's files,
  the benchmark files) under a unique temporary name in the same folder and renames it into place:
  a reader sees the old file or the new one, never half of one, and two writers never collide.
* :func:`atomic_directory` writes a cache *entry* (a folder: a trained model, an unlearning run)
  the same way, and seals it with ``manifest.json``: the size and sha256 of every file in it.
  :func:`read_entry` verifies every file against that manifest before the caller reads anything,
  so a missing, truncated, shortened or overwritten file raises :class:`CacheError` naming the
  entry and the file instead of being served.

Concurrency (several processes sharing one cache, e.g. a sweep run by worker processes): each entry
has a lock, the file ``.locks/NAME.lock`` in its folder (``filelock``, an OS file lock: a dead
process holds none). Writers hold
it while they write and swap the entry in; readers hold it while they verify and read. So a
reader never sees an entry being replaced, and a second writer that finds a complete entry keeps it
(:func:`atomic_directory`'s ``keep``) instead of writing its own copy.

A writer killed mid-write leaves a temporary folder ``.NAME.XXXXXXXX.tmp``; it is never served and
is removed by the next :func:`atomic_directory` call in the same folder (:func:`clean_temporaries`),
but only once no process holds that entry's lock, i.e. never while its writer lives.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Callable, TypeVar

T = TypeVar("T")

MANIFEST = "manifest.json"
"""The file inside every cache entry that lists the size and sha256 of each of its other files."""

MANIFEST_FORMAT = 1

LOCK_TIMEOUT = 600.0
"""Seconds a writer or reader waits for an entry's lock before giving up with :class:`CacheError`
(a writer holds it only while it writes files, never while it trains)."""

_TEMPORARY = re.compile(r"^\.(?P<entry>.+)\.[a-z0-9_]{8}\.tmp$")
"""Names of the temporary folders :func:`atomic_directory` writes (``tempfile.mkdtemp``'s eight
random characters) and of the replaced entries it deletes."""


class CacheError(RuntimeError):
    """A cache entry exists but cannot be used; the message names the entry (the folder to delete)
    and the file at fault."""


# ----------------------------------------------------------------------------------------------
# location and keys


def cache_dir() -> Path:
    """``$SATIMP_LAB_CACHE`` or ``$XDG_CACHE_HOME/satimp_lab`` (default ``~/.cache/satimp_lab``)."""
    if os.environ.get("SATIMP_LAB_CACHE"):
        return Path(os.environ["SATIMP_LAB_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "satimp_lab"


def cache_key(payload: dict) -> tuple[str, str]:
    """(canonical JSON, sha256 hex) of a config payload."""
    text = json.dumps(payload, sort_keys=True, default=str)
    return text, hashlib.sha256(text.encode()).hexdigest()


# ----------------------------------------------------------------------------------------------
# single files


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()
"""The process's umask at import. ``tempfile`` creates files 0600 and folders 0700; a finished
file or entry gets the mode a plain ``open``/``mkdir`` would have given it (0666/0777 less the
umask), so a report or cache written by one user stays readable by others as usual."""


def atomic_write(path: str | Path, content: str | bytes | Callable[[Path], object],
                 encoding: str = "utf-8") -> Path:
    """Write ``content`` to ``path`` atomically: into a unique temporary file in the same folder,
    then renamed over ``path`` (readers see the old file or the new one, never a partial one).

    content: text (written with ``encoding``), bytes, or a function that writes the file it is
    given (``lambda tmp: np.savez_compressed(tmp, ...)``). The temporary name keeps ``path``'s
    suffix, so writers that pick a format by extension (numpy, matplotlib) behave as for ``path``.
    Creates the parent folder. Returns ``path``. Raises whatever writing raises (``OSError``, or
    the function's error); the temporary file is removed then and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp" + path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        if callable(content):
            content(tmp)
        elif isinstance(content, str):
            tmp.write_text(content, encoding=encoding)
        else:
            tmp.write_bytes(content)
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


# ----------------------------------------------------------------------------------------------
# manifests


def file_sha256(path: str | Path, chunk_bytes: int = 1 << 20) -> str:
    """sha256 hex digest of a file's bytes, read in ``chunk_bytes`` pieces."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_bytes), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _entry_files(folder: Path) -> list[str]:
    """Every file under ``folder`` (recursively) but the manifest, as sorted POSIX paths."""
    names = []
    for root, _dirs, files in os.walk(folder):
        for f in files:
            names.append((Path(root) / f).relative_to(folder).as_posix())
    return sorted(n for n in names if n != MANIFEST)


def seal_entry(folder: str | Path) -> dict:
    """Write ``folder/manifest.json``: size (bytes) and sha256 of every other file in the folder
    and its subfolders. :func:`atomic_directory` calls this before moving an entry into place.
    Returns the manifest."""
    folder = Path(folder)
    files = {name: {"bytes": (folder / name).stat().st_size, "sha256": file_sha256(folder / name)}
             for name in _entry_files(folder)}
    manifest = {"format": MANIFEST_FORMAT, "files": files}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return manifest


RECOMPUTE = "delete this folder and it is recomputed on the next call"
"""What a user does about a corrupt cache entry (the default remedy of :func:`verify_entry`)."""


def _corrupt(entry: Path, name: str, problem: str, what: str, remedy: str) -> CacheError:
    return CacheError(f"corrupt {what} {entry}: {name}: {problem}; {remedy}")


def _manifest(entry: Path, what: str, remedy: str) -> dict:
    """``entry``'s manifest (its ``files`` a mapping). Raises :class:`CacheError` naming the
    manifest when it is missing or unreadable."""
    try:
        manifest = json.loads((entry / MANIFEST).read_text())
        files = manifest["files"]
        if not isinstance(files, dict):
            raise TypeError(f"'files' is a {type(files).__name__}, not a mapping")
    except FileNotFoundError:
        raise _corrupt(entry, MANIFEST, "missing (an incomplete entry, or one written without "
                                        "content hashes)", what, remedy) from None
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise _corrupt(entry, MANIFEST, f"unreadable ({type(err).__name__}: {err})", what, remedy) from None
    return manifest


def _verify_file(entry: Path, name: str, record: dict, what: str, remedy: str) -> None:
    """Check one file of ``entry`` against its manifest ``record`` (size first, then sha256).
    Raises :class:`CacheError` naming the entry and the file when it is missing, unreadable, or
    has another size or other content."""
    path = entry / name
    try:
        size = path.stat().st_size
        if size != record["bytes"]:
            raise _corrupt(entry, name, f"{size} bytes, {record['bytes']} when written", what, remedy)
        if file_sha256(path) != record["sha256"]:
            raise _corrupt(entry, name, "content differs from when it was written (sha256)", what, remedy)
    except FileNotFoundError:
        raise _corrupt(entry, name, "missing", what, remedy) from None
    except OSError as err:
        raise _corrupt(entry, name, f"unreadable ({err})", what, remedy) from None


def verify_entry(entry: str | Path, what: str = "cache entry", remedy: str = RECOMPUTE) -> dict:
    """Check a cache entry against its manifest: every listed file exists with its recorded size
    and sha256, and no unlisted file was added. Returns the manifest.

    Cost: one read of every byte of the entry (sha256 runs at several hundred MB/s).
    Raises :class:`CacheError` ``"corrupt <what> <entry>: <file>: <problem>; <remedy>"`` for a missing
    or unreadable manifest (an entry written by an interrupted or older writer) and for the first
    file that is missing, has another size or other content, or is not in the manifest.
    """
    entry = Path(entry)
    manifest = _manifest(entry, what, remedy)
    files = manifest["files"]
    for name, record in sorted(files.items()):
        _verify_file(entry, name, record, what, remedy)
    extra = sorted(set(_entry_files(entry)) - set(files))
    if extra:
        raise _corrupt(entry, extra[0], "not part of the entry as written", what, remedy)
    return manifest


def _entry_key(entry: str | Path, key_file: str, what: str = "cache entry", remedy: str = RECOMPUTE):
    """The ``"key"`` field of the JSON file ``key_file`` of ``entry`` (None when it has none),
    read after verifying that one file against the manifest (cost: one small file, not the
    entry). Raises :class:`CacheError` naming the entry and the file when the manifest is missing
    or unreadable, or ``key_file`` is not listed in it, is missing, has changed since it was
    written, or is not a JSON object."""
    entry = Path(entry)
    files = _manifest(entry, what, remedy)["files"]
    if key_file not in files:
        raise _corrupt(entry, key_file, "not listed in the manifest", what, remedy)
    _verify_file(entry, key_file, files[key_file], what, remedy)
    try:
        meta = json.loads((entry / key_file).read_text())
        if not isinstance(meta, dict):
            raise TypeError(f"a {type(meta).__name__}, not a JSON object")
    except (OSError, ValueError, TypeError) as err:
        raise _corrupt(entry, key_file, f"unreadable ({type(err).__name__}: {err})", what, remedy) from None
    return meta.get("key")


# ----------------------------------------------------------------------------------------------
# locks and entries


def _lock_path(entry: Path) -> Path:
    return entry.parent / ".locks" / f"{entry.name}.lock"


@contextlib.contextmanager
def entry_lock(entry: str | Path, timeout: float = LOCK_TIMEOUT):
    """Hold the inter-process lock of ``entry`` (reentrant within a thread).

    A folder this process cannot write to (a read-only cache) is not locked: nobody writes there.
    Raises :class:`CacheError` naming the entry and the lock file if another process holds the lock
    for more than ``timeout`` seconds (0: do not wait).
    """
    from filelock import FileLock, Timeout

    entry = Path(entry)
    if not os.access(entry.parent, os.W_OK):
        yield
        return
    _lock_path(entry).parent.mkdir(exist_ok=True)
    lock = FileLock(_lock_path(entry), is_singleton=True)
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        raise CacheError(f"cache entry {entry} is locked by another process for more than "
                         f"{timeout:g} s (lock file {_lock_path(entry)})") from None
    try:
        yield
    finally:
        lock.release()


def clean_temporaries(folder: str | Path) -> list[Path]:
    """Remove the temporary folders that killed writers left in ``folder``: every
    ``.NAME.XXXXXXXX.tmp`` whose entry ``NAME`` is not locked by a live writer (its lock is taken
    without waiting; a process's locks are released by the OS when it dies). Returns the folders
    removed."""
    folder = Path(folder)
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for child in sorted(folder.iterdir()):
        match = _TEMPORARY.match(child.name)
        if not match or not child.is_dir():
            continue
        try:
            with entry_lock(folder / match["entry"], timeout=0):
                shutil.rmtree(child, ignore_errors=True)
                removed.append(child)
        except CacheError:
            continue  # its writer is alive
    return removed


def _usable(final: Path, keep: Callable[[Path], bool] | None) -> bool:
    """Whether an existing entry may stand: complete (it verifies) and accepted by ``keep``."""
    if not final.exists():
        return False
    try:
        verify_entry(final)
    except CacheError:
        return False
    return keep is None or bool(keep(final))


def atomic_directory(final: str | Path, write: Callable[[Path], object],
                     keep: Callable[[Path], bool] | None = None) -> Path:
    """Write the cache entry ``final`` through ``write(tmp_dir)``, seal it (:func:`seal_entry`)
    and move it into place in one rename. Returns ``final``.

    Under the entry's lock (:func:`entry_lock`): leftover temporaries in the folder are removed
    (:func:`clean_temporaries`); if a complete entry already exists and ``keep(final)`` accepts it
    (``keep`` None: any complete entry), it stands and ``write`` is not called -- another writer
    got there first; otherwise the new entry replaces it (the old one is renamed away first, then
    deleted, so the entry is never seen half-deleted). A crash mid-write leaves only a
    ``.tmp`` folder, never a half-written entry. ``keep`` is called with the lock held and may
    read the entry (e.g. through :func:`read_entry`).

    Raises what ``write`` raises (nothing is moved into place then), and :class:`CacheError` if
    the lock cannot be taken.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    with entry_lock(final):
        clean_temporaries(final.parent)
        if _usable(final, keep):
            return final
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
        old = None
        try:
            write(tmp)
            seal_entry(tmp)
            os.chmod(tmp, 0o777 & ~_UMASK)
            if final.exists():  # stale, corrupt, or not accepted by keep
                old = final.parent / f".{final.name}.{secrets.token_hex(4)}.tmp"
                os.rename(final, old)
            os.replace(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
    return final


def read_entry(entry: str | Path, read: Callable[[Path], T], what: str = "cache entry",
               key_file: str | None = None, key_text: str | None = None) -> T | None:
    """``read(entry)`` after verifying the entry (:func:`verify_entry`), under its lock, so the
    files read are the files verified. None if the entry does not exist.

    With ``key_file`` and ``key_text`` (the entry's JSON file holding ``"key"``, and the key the
    caller wants): the key is compared first (:func:`entry_key`: the manifest and that one file
    are checked, nothing else is hashed); an entry whose key differs is stale and None is returned
    without verifying or reading the rest (the caller recomputes and replaces it). Only an entry
    with the wanted key is verified in full and read.

    ``read`` may itself return None (e.g. an entry whose key differs: the caller recomputes).
    Raises :class:`CacheError` naming the entry and the file if the entry is incomplete or any of
    its files changed since it was written (the caller does not recompute then: the user deletes
    the folder named), or if the lock cannot be taken. Raises ValueError when only one of
    ``key_file`` and ``key_text`` is given.
    """
    if (key_file is None) != (key_text is None):
        raise ValueError(f"read_entry needs both key_file and key_text or neither; got key_file={key_file!r}, "
                         f"key_text={'None' if key_text is None else 'a string'}")
    entry = Path(entry)
    if not entry.parent.is_dir():
        return None
    with entry_lock(entry):
        if not entry.exists():
            return None
        if key_file is not None and _entry_key(entry, key_file, what) != key_text:
            return None  # stale: another configuration's entry, replaced by the caller's recompute
        verify_entry(entry, what)
        return read(entry)
