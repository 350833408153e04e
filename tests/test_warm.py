"""What a process that renders more than once keeps (benchmarks/README.md, "cold start and warm
workers"): a burst worker loads the template's fonts once and reuses them, with PDFs
byte-identical to a fresh process's; the scheduler's runs start with the renderer imported;
and a run that only writes does not import the ledger's database layer."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import shutil
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from reporter.config import Config, load_config
from reporter.periods import Period
from reporter.run import burst
from tests.conftest import DEMO, DEMO_NOW, ROOT

JOBS = [
    ("alice@example.test", {"salesperson": "Alice Martin"}, Period.parse("2026-10", "month"), DEMO_NOW),
    ("bruno@example.test", {"salesperson": "Bruno Petit"}, Period.parse("2026-10", "month"), DEMO_NOW),
]


def _burst_config() -> Config:
    """The demo, cut by salesperson (crm and orders have the column; the others are shared)."""
    config = load_config(DEMO, env={})
    sources = {
        name: src if name in ("crm", "orders") else src.model_copy(update={"shared": True})
        for name, src in config.sources.items()
    }
    return config.model_copy(update={"sources": sources})


def _reports_in_this_worker(jobs: list[burst.Job]) -> tuple[int, list[tuple[int, ...]], list[bytes]]:
    """Run in a burst worker (after its initializer): the FontConfigurations this process made
    while rendering ``jobs``, the identity of the one each render used, and the PDFs."""
    from reporter.render import pdf

    before = pdf.font_loads
    used, pdfs = [], []
    for job in jobs:
        report = burst._one(job)
        assert report.pdf is not None, report.error
        pdfs.append(report.pdf)
        used.append(tuple(id(fonts) for fonts in pdf._FONTS.values()))
    return pdf.font_loads - before, used, pdfs


def test_a_burst_worker_loads_the_fonts_once_and_its_pdfs_are_a_fresh_process_s():
    config = _burst_config()
    context = multiprocessing.get_context("fork")  # as the local executor's pool on Linux
    with ProcessPoolExecutor(1, mp_context=context, initializer=burst._init, initargs=(config,)) as pool:
        loads, used, pdfs = pool.submit(_reports_in_this_worker, JOBS).result()
    assert loads == 1  # the second report reused the first one's fonts
    assert used[0] == used[1]  # the same FontConfiguration object
    assert len(used[0]) == 1
    # The warm render (the second) gives the bytes a fresh process gives for that recipient.
    fresh = subprocess.run(
        [sys.executable, "-c", FRESH, str(DEMO)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert fresh.returncode == 0, fresh.stderr[-2000:]
    assert fresh.stdout.split() == ["1", hashlib.sha256(pdfs[1]).hexdigest()]


FRESH = """
import hashlib, sys
from tests.test_warm import JOBS, _burst_config
from reporter.compute.database import open_database
from reporter.render import pdf
from reporter.run import burst
config = _burst_config()
con, infos = open_database(config)
report = burst._report(config, con, infos, JOBS[1])
print(pdf.font_loads, hashlib.sha256(report.pdf).hexdigest())
"""


def test_the_fonts_are_loaded_again_when_a_template_file_changes(tmp_path):
    from reporter.render import pdf

    folder = tmp_path / "tpl"
    shutil.copytree(ROOT / "templates" / "executive", folder)
    first = pdf.font_config([folder])
    assert pdf.font_config([folder]) is first
    font = folder / "fonts" / "DejaVuSans.ttf"
    os.utime(font, ns=(font.stat().st_atime_ns, font.stat().st_mtime_ns + 10**9))
    second = pdf.font_config([folder])
    assert second is not first
    assert pdf.font_config([folder]) is second


def _renderer_there_at_start(conn: Any) -> None:
    """A scheduled run's first look at its process: what it has without importing anything."""
    conn.send(
        [name in sys.modules for name in ("weasyprint", "fontTools.subset", "reporter.delivery.ledger")]
    )
    conn.close()


def test_each_scheduled_run_starts_with_the_renderer_imported_by_the_server():
    from reporter.run import schedule

    context = schedule._context()
    found = []
    for _ in range(2):  # two runs, each a fresh fork of the same server
        receive, send = context.Pipe(duplex=False)
        process = context.Process(target=_renderer_there_at_start, args=(send,))
        process.start()
        send.close()
        found.append(receive.recv())
        process.join(60)
    assert found == [[True, True, True], [True, True, True]]


def test_a_run_that_only_writes_does_not_import_the_ledger_database_layer(tmp_path):
    shutil.copytree(ROOT / "config", tmp_path / "config")
    code = (
        "import sys\n"
        "from reporter import cli\n"
        "args = ['run', 'config/example.yaml', '--period', '2026-10', '--no-send', '--output', 'out']\n"
        "code = cli.main(args)\n"
        "print(code, 'sqlalchemy' in sys.modules, 'weasyprint' in sys.modules)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    # nor the renderer: the render server forked as the run started imported it, and rendered
    assert done.stdout.splitlines()[-1] == "0 False False", done.stderr[-2000:]
    assert (tmp_path / "out" / "marketing-monthly" / "2026-10" / "marketing-monthly_2026-10.pdf").is_file()


def test_a_second_render_in_the_same_process_compiles_no_template(tmp_path, demo_report):
    from reporter.render.html import COMPILED, render_html

    config, results = demo_report
    folder = tmp_path / "mine"
    shutil.copytree(ROOT / "templates" / "executive", folder)
    config = config.model_copy(update={"report": config.report.model_copy(update={"template": str(folder)})})
    before = COMPILED.compiled
    first = render_html(config, results)
    assert COMPILED.compiled > before  # this folder's report.html, compiled once
    before = COMPILED.compiled
    assert render_html(config, results) == first
    assert COMPILED.compiled == before  # the second render reused the compiled code
    # A template edited meanwhile is compiled again, and its new text is what renders.
    page = folder / "report.html"
    text = page.read_text(encoding="utf-8")
    page.write_text(text.replace("<body>", "<body><p>edited</p>"), encoding="utf-8")
    again = render_html(config, results)
    assert COMPILED.compiled == before + 1
    assert "<p>edited</p>" in again
    assert "<p>edited</p>" not in first
