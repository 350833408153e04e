"""Render benchmark: the demo report's stages, against WeasyPrint alone on the same final HTML
and against headless Chromium printing that HTML (Debian `chromium`; benchmark only).

    .venv/bin/python benchmarks/render.py [--repeat 3] [--stress]

Stages are timed in one warm process (imports done): compute, charts + context, HTML (Jinja),
PDF (WeasyPrint). "WeasyPrint alone" is `HTML(string=final_html).write_pdf()` in the same
process; Chromium is timed as a whole process (`--headless --print-to-pdf`, best of the same
repeats), since that is how peers use it. `--stress` renders a synthetic report with 5,000 breakdown rows and 100
KPIs instead (peak RSS is read from a separate child process).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reporter.compute.database import compute  # noqa: E402
from reporter.config import load_config  # noqa: E402
from reporter.periods import Period  # noqa: E402
from reporter.render.context import Formatter  # noqa: E402
from reporter.render.html import build_context, environment, stylesheet_dir, template_dirs  # noqa: E402
from reporter.render.pdf import write_pdf  # noqa: E402
from tests.fixtures.stress import stress_config  # noqa: E402

NOW = dt.datetime(2026, 11, 2, 6, tzinfo=dt.UTC)


def chromium_time(html_path: Path, out: Path) -> float | None:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        return None
    with tempfile.TemporaryDirectory() as profile:
        cmd = [
            exe,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--no-pdf-header-footer",
            f"--print-to-pdf={out}",
            html_path.as_uri(),
        ]
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
        return time.perf_counter() - start


def peak_rss_of_render(config_path: Path) -> tuple[int, int]:
    """Peak RSS of a fresh process computing and rendering the report, and of the worker it
    forks for the second half (which counts the pages it shares with its parent too). Run
    before this process grows: Linux reports a child's peak at least as high as its parent's
    size when it forked."""
    code = (
        f"import datetime as dt, resource, sys; sys.path.insert(0, {str(ROOT)!r})\n"
        "from reporter.config import load_config\nfrom reporter.periods import Period\n"
        "from reporter.compute.database import compute\nfrom reporter.run.stages import render_pdf\n"
        f"c = load_config(__import__('pathlib').Path({str(config_path)!r}))\n"
        "r = compute(c, Period.parse('2026-10', 'month'), dt.datetime(2026, 11, 2, tzinfo=dt.UTC))\n"
        "render_pdf(c, r)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,"
        " resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    parent, worker = (int(x) * 1024 for x in out.split())
    return parent, worker


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--stress", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = stress_config(folder) if args.stress else ROOT / "config" / "example.yaml"
        parent_rss, worker_rss = peak_rss_of_render(path)
        from weasyprint import HTML

        config = load_config(path, env={})
        period = Period.parse("2026-10", "month")
        best: dict[str, float] = {}
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            results = compute(config, period, NOW)
            t1 = time.perf_counter()
            formatter = Formatter(config.report.locale, config.report.currency, config.report.timezone)
            env = environment(config, formatter)
            context = build_context(config, results, formatter)
            context.update(for_browser=False, inline_css="")
            t2 = time.perf_counter()
            html = env.get_template("report.html").render(context)
            t3 = time.perf_counter()
            pdf = write_pdf(html, stylesheet_dir(config), template_dirs(config))
            t4 = time.perf_counter()
            base = stylesheet_dir(config).as_uri() + "/"
            HTML(string=html, base_url=base).write_pdf()
            t5 = time.perf_counter()
            for key, value in {
                "compute": t1 - t0,
                "charts+context": t2 - t1,
                "html": t3 - t2,
                "pdf": t4 - t3,
                "weasyprint alone": t5 - t4,
            }.items():
                best[key] = min(best.get(key, value), value)
        render = best["charts+context"] + best["html"] + best["pdf"]
        html_file = stylesheet_dir(config) / f".bench-{os.getpid()}.html"
        html_file.write_text(html, encoding="utf-8")
        try:
            times = [chromium_time(html_file, folder / "chromium.pdf") for _ in range(args.repeat)]
            chrome = None if times[0] is None else min(t for t in times if t is not None)
        finally:
            html_file.unlink()
        pages = pdf.count(b"/Type /Page\n") or pdf.count(b"/Type /Page")
        print(f"report: {'stress' if args.stress else 'demo'}, {len(pdf) / 1e3:.0f} kB PDF")
        for key, value in best.items():
            print(f"  {key:18s} {value:6.2f} s")
        print(f"  our render (charts+context+html+pdf) {render:.2f} s")
        print(f"  ratio to WeasyPrint alone: {render / best['weasyprint alone']:.2f}x (target <= 1.5x)")
        if chrome is not None:
            print(
                f"  headless Chromium process printing the same HTML: {chrome:.2f} s; "
                f"ratio {render / chrome:.2f}x (target <= 1.5x)"
            )
        print(
            f"  peak RSS computing and rendering it: {parent_rss / 1e6:.0f} MB, its render worker "
            f"{worker_rss / 1e6:.0f} MB, together at most {(parent_rss + worker_rss) / 1e6:.0f} MB"
        )
        del pages


if __name__ == "__main__":
    main()
