"""Run ``reporter`` in a child process and read its own peak memory.

``ru_maxrss`` (``getrusage``, ``os.wait4``) is no measure here: Linux keeps, across ``exec``,
the peak of the memory the child had before it, which is the forked pytest process's, so the
same command measured 60 MB alone and 430 MB late in the whole suite. ``VmHWM`` in
``/proc/self/status`` belongs to the memory the command itself maps after ``exec``; the child
prints it on its last line of stderr as it exits."""

from __future__ import annotations

PEAK_MARK = "reporter-test-peak-kB"

# python -c CHILD ARGS...: reporter's CLI, then its own peak on stderr's last line
CHILD = f"""
import atexit, sys

def _peak():
    with open("/proc/self/status") as status:
        kb = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    sys.stderr.write("\\n{PEAK_MARK} " + kb + "\\n")
    sys.stderr.flush()

atexit.register(_peak)
from reporter.cli import main
sys.exit(main(sys.argv[1:]))
"""


def split_peak(stderr: str) -> tuple[str, float]:
    """stderr without the peak line, and the peak in MB (the child's own memory)."""
    lines = stderr.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    assert lines, "nothing on stderr, not even the peak line"
    assert lines[-1].startswith(PEAK_MARK), f"no peak line in stderr: {stderr[-500:]!r}"
    kb = int(lines[-1].split()[1])
    body = lines[:-1]
    while body and not body[-1].strip():
        body.pop()
    return "\n".join(body) + ("\n" if body else ""), kb / 1024
