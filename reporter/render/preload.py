"""Imported by the scheduler's server process before it forks each report's run (``PRELOAD`` in
``reporter.render.warmup``): the renderer's modules, imported once there instead of in every run.
An import that fails here (Pango missing) is left to the run, which imports it again and reports
the error as it always does; the server itself keeps going."""

from reporter.render.warmup import import_all

import_all()
