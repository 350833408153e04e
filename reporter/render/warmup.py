"""Import the PDF renderer in the background while a run reads and computes its data.

Importing WeasyPrint takes about 0.45 s of a fresh ``reporter run`` (most of it cffi parsing
Pango's C declarations), and fontTools' subsetter, which writes the PDF's fonts on a machine
without libharfbuzz-subset0, about 0.07 s more. Meanwhile the run spends about as long in DuckDB
(reading each source's header, checking the metrics on a sample, reading the sources, the
queries), which releases the GIL: a thread started before that imports the renderer on the
second core, and the render finds it imported. It only imports modules; it renders nothing.
When an import fails there, the render imports it again in the main thread and reports the
error as it always did.
"""

from __future__ import annotations

import importlib
import os
import threading

# What the render and the PDF/A writer import, heaviest first (``weasyprint`` pulls in cffi,
# Pango, tinycss2, cssselect2, pydyf and Pillow).
MODULES = ("weasyprint", "fontTools.subset", "fontTools.ttLib.tables._g_l_y_f")

# What the scheduler's server process imports once, before it forks each report's run: the
# pipeline, the ledger and the mailer (SQLAlchemy), the report and digest templates' code, and
# the renderer. A forked run starts with all of it imported (``reporter.run.schedule``).
PRELOAD = (
    "reporter.run.pipeline",
    "reporter.delivery.ledger",
    "reporter.delivery.send",
    "reporter.render.html",
    "reporter.render.preload",  # MODULES, a failure left to the run (Pango missing: OSError)
)

_started: threading.Thread | None = None
FORK_WAIT = 60.0  # seconds; the imports take about half a second


def import_all(modules: tuple[str, ...] = MODULES) -> None:
    """Import ``modules`` in turn; stop at the first that fails (its importer reports it)."""
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # the render imports it again and reports the error there
            return


def start() -> threading.Thread:
    """Start importing the renderer in a background thread (once per process) and return it.

    A daemon thread: a run that stops early (a configuration error) does not wait for it."""
    global _started
    if _started is None:
        _started = threading.Thread(target=import_all, name="reporter-import-renderer", daemon=True)
        _started.start()
    return _started


def join() -> None:
    """Wait for the background import to finish (if one was started)."""
    _finish_before_fork()


def _finish_before_fork() -> None:
    """A process forked while the thread holds an import lock would inherit the lock held by no
    one (burst workers are forked): the thread finishes first."""
    thread = _started
    if thread is not None and thread.is_alive() and thread is not threading.current_thread():
        thread.join(FORK_WAIT)


os.register_at_fork(before=_finish_before_fork)
