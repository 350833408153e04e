"""Durable writes and hashing: the one place that knows how a file reaches the disk whole.

``write_atomic`` replaces a file so that a reader, or the next run after a crash, sees either the
old content or the new one, never a torn file: the data goes to a temporary file in the same
folder, which is flushed and fsynced, renamed over the target, and the folder itself is fsynced
so the rename survives a power cut."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path


def report_file(report: str, period: str, ext: str) -> str:
    """The name of a report's output file: ``marketing-monthly_2026-10.pdf`` (the PDF, the
    workbook), the same in the output folder, on the message and in the digest's words."""
    return f"{report}_{period}.{ext}"


# The characters a recipient's file or folder name keeps as they are.
_PLAIN = re.compile(r"[a-z0-9@._+-]+")


def recipient_name(address: str) -> str:
    """The file or folder name that stands for a recipient (``recipients/<name>/``, the outbox's
    ``<name>.eml``). A plain address (letters, digits and ``@ . _ + -`` only, not starting with a
    dot) is its own name, lower-cased: ``alice@acme.fr``. Any other (``a/b@acme.fr``, which is a
    valid address) is reduced to those characters and followed by a hash of the whole address,
    ``a_b@acme.fr-87afc7557f``: never a path, never a hidden file, and two addresses never share a
    name (a plain address that ends in the same hash is the only way to collide, and only the
    same YAML can name both)."""
    lowered = address.strip().lower()
    if _PLAIN.fullmatch(lowered) and not lowered.startswith(".") and len(lowered) <= 200:
        return lowered
    slug = re.sub(r"[^a-z0-9@._+-]+", "_", lowered).strip("._-+")[:60] or "recipient"
    return f"{slug}-{hashlib.sha256(lowered.encode('utf-8')).hexdigest()[:10]}"


class OutsideFolder(OSError):
    """A write that would land outside the folder it belongs to (a ``..``, an absolute part or
    a symbolic link that leads elsewhere): refused before anything is written."""


def confined(path: Path, folder: Path) -> Path:
    """``path``, checked to lie inside ``folder`` once ``..`` and every symbolic link on the way
    are resolved (those of its folders and of the file itself when they exist); OutsideFolder
    otherwise."""
    real = path.resolve()
    if not real.is_relative_to(folder.resolve()):
        why = f"not written: it leads outside the output folder {folder}"
        raise OutsideFolder(errno.EPERM, why, str(path))
    return path


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


def write_atomic(path: Path, data: bytes, *, within: Path | None = None) -> None:
    """Replace ``path`` with ``data``, whole or not at all, durably; ``within``: see
    ``write_together``."""
    write_together({path: data}, within=within)


def write_together(
    contents: Mapping[Path, bytes], remove: Iterable[Path] = (), *, within: Path | None = None
) -> None:
    """Put several files in place as one step (a run's results.json, PDF and e-mail): each is
    first written whole and fsynced to a temporary file beside its target; only when every one is
    written are they renamed over their targets, then ``remove`` deleted and the folders fsynced.
    A failure while writing (a full disk) leaves every target as it was, no temporary file and
    no folder it made, and the OSError names the file it was writing (not a temporary name).
    ``within``: the folder every file (and every one removed) must lie in, symbolic links
    resolved; any other is refused (OutsideFolder) before anything is written."""
    remove = list(remove)
    if within is not None:
        for target in [*contents, *remove]:
            confined(target, within)
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
