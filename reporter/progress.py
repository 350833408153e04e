"""Progress on a terminal: what a run is doing (sources read, KPIs, the PDF, each recipient),
shown with tqdm only when stderr is a TTY and only once the run has taken longer than
``DELAY`` seconds. Off a terminal (cron, systemd, a pipe) nothing is printed.

The pipeline calls ``stage("…")`` as each stage begins; without an active ``showing()`` (tests,
the scheduler, a library caller) that is a no-op.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import IO, Any

DELAY = 1.0  # seconds before the bar appears: short runs print nothing extra

_current: ContextVar[Any] = ContextVar("reporter_progress", default=None)


@contextmanager
def showing(total: int, *, stream: IO[str] | None = None, tty: bool | None = None) -> Iterator[None]:
    """Show a bar of ``total`` stages on ``stream`` (stderr) while the block runs, if it is a
    terminal (``tty`` forces the answer)."""
    out = stream if stream is not None else sys.stderr
    is_tty = out.isatty() if tty is None else tty
    if not is_tty:
        yield
        return
    import shutil

    from tqdm import tqdm

    size = shutil.get_terminal_size()  # a terminal that says it is 0 x 0 (a bare pty) gets 80 x 24
    # No monitor thread (tqdm starts one per process, for bars left unrefreshed, and it lives to
    # the end): the bar is refreshed at each stage and by the timer below; a thread alive for
    # the whole run would keep a later render from being forked (reporter.render.forked).
    tqdm.monitor_interval = 0
    bar = tqdm(
        total=total,
        ncols=size.columns,
        nrows=size.lines,
        file=out,
        delay=DELAY,
        leave=False,
        mininterval=0,  # a handful of stages: show each one
        miniters=1,
        bar_format="reporter: {desc} [{n_fmt}/{total_fmt}] {elapsed}",
    )
    # tqdm's delay only shows the bar at the next stage; a long stage (the PDF) shows it on time.
    timer = threading.Timer(DELAY, lambda: bar.disable or bar.refresh())
    timer.daemon = True
    token = _current.set(bar)
    timer.start()
    try:
        from tqdm.contrib.logging import logging_redirect_tqdm

        with logging_redirect_tqdm():  # a warning clears the bar's line, prints, then the bar
            yield
    finally:
        timer.cancel()
        timer.join()
        _current.reset(token)
        bar.close()


def stage(label: str) -> None:
    """A new stage begins: the previous one is done."""
    bar = _current.get()
    if bar is None:
        return
    begun = getattr(bar, "reporter_begun", False)
    bar.reporter_begun = True
    bar.set_description_str(label, refresh=False)  # refresh=True would ignore the delay
    bar.update(1 if begun else 0)  # shows the bar once DELAY has passed
