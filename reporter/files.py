"""Durable writes and hashing: the one place that knows how a file reaches the disk whole.

``write_atomic`` replaces a file so that a reader, or the next run after a crash, sees either the
old content or the new one, never a torn file: the data goes to a temporary file in the same
folder, which is flushed and fsynced, renamed over the target, and the folder itself is fsynced
so the rename survives a power cut."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path


def report_file(report: str, period: str, ext: str) -> str:
    """The name of a report's output file: ``marketing-monthly_2026-10.pdf`` (the PDF, the
    workbook), the same in the output folder, on the message and in the digest's words."""
    return f"{report}_{period}.{ext}"


def fsync_dir(folder: Path) -> None:
    """Make a rename or a creation in ``folder`` durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        with contextlib.suppress(OSError):  # some filesystems refuse fsync on a folder
            os.fsync(fd)
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# The mode a new file gets from open() (0o666 less the umask). A temporary file is created 0o600;
# the file that replaces the target gets this mode, as any file the user writes would.
_MODE = 0o666 & ~_umask()


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``, whole or not at all, durably."""
    write_together({path: data})


def write_together(contents: Mapping[Path, bytes], remove: Iterable[Path] = ()) -> None:
    """Put several files in place as one step (a run's results.json, PDF and e-mail): each is
    first written whole and fsynced to a temporary file beside its target; only when every one is
    written are they renamed over their targets, then ``remove`` deleted and the folders fsynced.
    A failure while writing (a full disk) leaves every target as it was, no temporary file and
    no folder it made, and the OSError names the file it was writing (not a temporary name)."""
    staged: list[tuple[str, Path]] = []
    made: list[Path] = []
    path = None
    try:
        for path, data in contents.items():
            made += _make_folder(path.parent)
            staged.append((_staged(path, data), path))
    except BaseException as exc:
        for tmp, _ in staged:
            Path(tmp).unlink(missing_ok=True)
        for folder in reversed(made):  # the deepest first; only if empty
            with contextlib.suppress(OSError):
                folder.rmdir()
        # a full disk names no file, a refused temporary file its own name: say the target's
        if isinstance(exc, OSError) and path is not None and _unnamed(exc, path):
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
        raise
    for tmp, path in staged:
        os.replace(tmp, path)
    gone = [path for path in remove if path not in contents and path.is_file()]
    for path in gone:
        path.unlink(missing_ok=True)
    for folder in dict.fromkeys(path.parent for path in [*contents, *gone]):
        fsync_dir(folder)


def _unnamed(exc: OSError, path: Path) -> bool:
    return exc.filename is None or Path(str(exc.filename)).name.startswith(f".{path.name}.")


def _make_folder(folder: Path) -> list[Path]:
    """Make ``folder`` and its missing parents; the ones made, outermost first."""
    missing = []
    for candidate in [folder, *folder.parents]:
        if candidate.exists():
            break
        missing.append(candidate)
    folder.mkdir(parents=True, exist_ok=True)
    return list(reversed(missing))


def _staged(path: Path, data: bytes) -> str:
    """``data`` written and fsynced to a new temporary file in ``path``'s folder: its name."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, _MODE)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
