"""A report's HTML printed to its PDF: the one part of a run that needs WeasyPrint.

``stages.print_job`` turns a report's configuration and Results into a ``PrintJob`` (the HTML,
the folders its stylesheet and fonts may come from, the run's clock and, for PDF/A, the files
that travel inside: results.json, the YAML, provenance.json, check-ins, long breakdowns);
``PrintJob.print()`` prints it. The job holds plain data only, so that ``reporter run``'s render
server (``reporter.render.forked``) imports WeasyPrint and this module, not the configuration's
model, Jinja or Babel, and is ready to print as soon as the run hands over the job: the run
renders the HTML itself, while the server is still importing WeasyPrint."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class PrintJob:
    html: str
    base_dir: Path  # the stylesheet's folder: relative URLs in the HTML start there
    allowed: tuple[Path, ...]  # the only folders a stylesheet, image or font may be read from
    when: dt.datetime  # the run's clock: the PDF's dates and its fonts' stamps
    # PDF/A-3a: each associated file's name → (content, AFRelationship); None: a plain PDF
    attachments: Mapping[str, tuple[bytes, str]] | None = None
    identifier: str = ""  # PDF/A's document identifier (the report and the period, hashed)

    def print(self) -> bytes:
        """The PDF's bytes (tagged PDF/A-3a and PDF/UA-1 with its attachments when it has
        them); a RunError when WeasyPrint refuses or reports a problem."""
        from reporter.render.pdf import write_pdf

        finish = None
        if self.attachments is not None:
            attachments = dict(self.attachments)

            def finish(document: Any) -> bytes:
                from reporter.delivery.archive import make_pdfa

                return make_pdfa(document, attachments, self.identifier, self.when)

        return write_pdf(self.html, self.base_dir, list(self.allowed), finish=finish, when=self.when)


def print_pdf(job: PrintJob) -> bytes:
    """``job.print()``, as a module-level function the render server unpickles by name."""
    return job.print()
