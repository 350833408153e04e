"""Durable writes: whole or not at all, and readable as any file the user writes (the umask)."""

from __future__ import annotations

import os
import stat

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
