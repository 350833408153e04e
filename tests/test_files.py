"""Durable writes: whole or not at all, and readable as any file the user writes (the umask)."""

from __future__ import annotations

import os
import stat

import pytest

from reporter.files import write_atomic


def test_a_written_file_has_the_users_usual_mode(tmp_path):
    mask = os.umask(0)
    os.umask(mask)
    target = tmp_path / "out" / "results.json"
    write_atomic(target, b"{}")
    assert target.read_bytes() == b"{}"
    # what open() would give; mkstemp's 0o600 would hide the report from the user's group
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask != 0o600
    assert [p.name for p in target.parent.iterdir()] == ["results.json"]  # no temporary left


def test_files_written_together_fail_whole_name_the_file_and_leave_no_folder(tmp_path):
    """The second file cannot be written (its folder would be inside a regular file): the first,
    already staged, is not put in place, and no temporary file or folder made for it is left."""
    from reporter.files import write_together

    (tmp_path / "plain").write_bytes(b"a file, not a folder")
    first = tmp_path / "out" / "shop" / "2026-10" / "results.json"
    second = tmp_path / "plain" / "shop_2026-10.pdf"
    with pytest.raises(FileExistsError) as failure:
        write_together({first: b"{}", second: b"%PDF"})
    assert failure.value.filename == str(second.parent)  # the folder that cannot be made
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["plain"]  # no out/shop/2026-10, no .tmp
    # and in a folder that exists, an earlier version stays as it was
    first.parent.mkdir(parents=True)
    first.write_bytes(b"before")
    with pytest.raises(FileExistsError):
        write_together({first: b"{}", second: b"%PDF"})
    assert first.read_bytes() == b"before"
    assert sorted(p.name for p in first.parent.iterdir()) == ["results.json"]


def test_a_write_that_fails_names_its_target_not_a_temporary_file(tmp_path):
    """A full disk names no file and a refused temporary file its own name ('.results.json.x1');
    the error names the file the run was writing. (RLIMIT_FSIZE makes a real write fail.)"""
    import resource
    import signal

    from reporter.files import write_together

    target = tmp_path / "results.json"
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    before = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1000, hard))
    try:
        with pytest.raises(OSError, match="File too large") as failure:
            write_together({target: b"x" * 5000})
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, before)
    assert failure.value.filename == str(target)
    assert list(tmp_path.iterdir()) == []
