"""The wall clock, for the ledger's record of what happened when.

A run has two clocks. Its ``now`` (the CLI's ``SOURCE_DATE_EPOCH``, a test's fixed time, the
scheduler's fire time) cuts the periods and dates the files, so that a re-render is
byte-identical; it is frozen for the whole run. What an auditor asks — when the run really
started and finished, when the server accepted each message — is the wall clock, read here at
the moment it happens and kept beside the run's clock in the ledger (``runs.wall_started``,
``runs.wall_finished``, ``deliveries.accepted``).
"""

from __future__ import annotations

import datetime as dt


def wall_now() -> dt.datetime:
    """The real time now, in UTC, to the microsecond."""
    return dt.datetime.now(dt.UTC)
