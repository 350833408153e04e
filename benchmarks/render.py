"""Render benchmark, in fresh processes (what `reporter run` is): medians of several runs.

    .venv/bin/python benchmarks/render.py [--runs 5]                    # the demo vs Chromium
    .venv/bin/python benchmarks/render.py --runs 7 --no-chromium        # the cold ratio only
    .venv/bin/python benchmarks/render.py [--runs 5] --stress [--pdf-rows N]
    .venv/bin/python benchmarks/render.py ... --code DIR                # another checkout's code
    .venv/bin/python benchmarks/render.py --before DIR                  # this tree and DIR, in turns

Demo: the whole `reporter run config/example.yaml --period 2026-10 --no-send` as a process
(imports, YAML, compute, HTML, PDF/A, results.json, archive), against Debian's headless
Chromium printing the same HTML (`--headless --no-sandbox --disable-gpu
--disable-background-networking --print-to-pdf`), also as a whole process. Each run starts from
a fresh copy of the configuration folder. In the same rounds, WeasyPrint alone prints that HTML
to the same tagged PDF/A-3a in a fresh process (no YAML, data or compute): the floor of any run
that renders with WeasyPrint. The cold-start figure is reporter's own time on top of it: in
each round, the run's wall time less WeasyPrint alone's, and their ratio (medians over the
rounds). Peak RSS is the process's own (with its children's for a render that forks), from wait4.

Stress: a fresh process computes the stress report (100 KPIs, a 5,000-row breakdown; tests/
fixtures/stress.py) and renders its PDF; the render's time is measured inside it, its peak RSS
from wait4. ``--pdf-rows 5000`` prints every row; the default prints 200 and "other".

``--code DIR`` runs the reporter from another source tree (e.g. ``git archive <commit>``
unpacked), for before/after figures; ``--before DIR`` runs DIR's reporter in the same rounds as
this tree's (a shared machine's load then weighs on both alike). The HTML Chromium prints is
always this tree's. Each tree's package is byte-compiled first, as pip does when it installs it:
no run compiles reporter's sources while WeasyPrint alone loads its bytecode.
"""

from __future__ import annotations

import argparse
import compileall
import datetime as dt
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fixtures.stress import stress_config  # noqa: E402

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


CPU: dict[tuple[str, ...], float] = {}  # the CPU seconds (user + system) of each command's last run


def timed(
    cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None
) -> tuple[float, int, str]:
    """(wall seconds, peak RSS in bytes of the process and its children, stdout); its CPU
    seconds, children included, go to CPU (on a loaded machine, wall time is mostly waiting)."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    CPU[tuple(cmd)] = usage.ru_utime + usage.ru_stime
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{cmd[:4]} failed")
    return elapsed, usage.ru_maxrss * 1024, out


def child_env(code: Path | None) -> dict[str, str]:
    """The environment of a run of ``code``'s reporter: with its bytecode, as an installed reporter
    has it (``with_bytecode``), and without PYTHONDONTWRITEBYTECODE, under which a source tree's
    modules would be compiled again in every process while WeasyPrint's never are."""
    with_bytecode(code or ROOT)
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if code is not None:
        env["PYTHONPATH"] = str(code)
    return env


def with_bytecode(tree: Path) -> None:
    """Compile ``tree``'s reporter package as pip does when it installs it (once per process)."""
    if tree not in COMPILED:
        compileall.compile_dir(tree / "reporter", quiet=1)
        COMPILED.add(tree)


COMPILED: set[Path] = set()


def final_html(config_path: Path) -> tuple[str, Path]:
    from reporter.compute.database import compute
    from reporter.config import load_config
    from reporter.periods import Period
    from reporter.render.html import render_html, stylesheet_dir

    config = load_config(config_path, env={})
    results = compute(config, Period.parse("2026-10", "month"), dt.datetime(2026, 11, 2, 6, tzinfo=dt.UTC))
    return render_html(config, results), stylesheet_dir(config)


def chromium(html_path: Path, out: Path) -> float:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        raise SystemExit("Debian's chromium is needed: apt-get install chromium")
    with tempfile.TemporaryDirectory() as profile:
        cmd = [
            exe,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--print-to-pdf={out}",
            html_path.as_uri(),
        ]
        return timed(cmd)[0]


# WeasyPrint alone, in a fresh process: the same HTML to the same tagged PDF/A-3a, nothing else
# (no YAML, data, compute or archive): the floor of any run that renders with WeasyPrint.
BARE = (
    "import sys; from weasyprint import HTML; "
    "HTML(filename=sys.argv[1]).write_pdf(sys.argv[2], pdf_variant='pdf/a-3a')"
)


def demo(runs: int, code: Path | None, before: Path | None, with_chromium: bool = True) -> None:
    """``runs`` rounds, each: our run, the ``before`` tree's run (if given), WeasyPrint alone and
    Chromium; the series are interleaved so that they see the same load on a shared machine.

    The cold-start figure is reporter's own time: a run's wall time less WeasyPrint alone's in
    the same round, and their ratio, each the median over the rounds (pairs, never medians of
    separate series: the load of a shared machine changes from one round to the next)."""
    series: dict[str, list[float]] = {"ours": [], "before": [], "chromium": [], "weasyprint": []}
    cpu: dict[str, list[float]] = {"ours": [], "before": [], "weasyprint": []}
    rss: dict[str, list[int]] = {"ours": [], "before": []}
    html, where = final_html(ROOT / "config" / "example.yaml")
    page = where / f".bench-{os.getpid()}.html"
    page.write_text(html, encoding="utf-8")
    cmd = [sys.executable, "-m", "reporter", "run", "config/example.yaml", "--period", "2026-10"]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for n in range(runs):
                for name, tree in (("ours", code), ("before", before)):
                    if name == "before" and before is None:
                        continue
                    folder = Path(tmp) / f"{name}{n}"
                    shutil.copytree((tree or ROOT) / "config", folder / "config")
                    seconds, peak, _ = timed(
                        [*cmd, "--no-send", "--output", "out"], child_env(tree), cwd=folder
                    )
                    series[name].append(seconds)
                    cpu[name].append(CPU[(*cmd, "--no-send", "--output", "out")])
                    rss[name].append(peak)
                if with_chromium:
                    series["chromium"].append(chromium(page, Path(tmp) / "chromium.pdf"))
                bare = [sys.executable, "-c", BARE, str(page), str(Path(tmp) / "weasyprint.pdf")]
                series["weasyprint"].append(timed(bare)[0])
                cpu["weasyprint"].append(CPU[tuple(bare)])
    finally:
        page.unlink()

    def runs_of(values: list[float]) -> str:
        return ", ".join(f"{x:.2f}" for x in values)

    bare = statistics.median(series["weasyprint"])
    print(
        f"demo, {runs} rounds of fresh processes, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )
    print(
        f"  WeasyPrint alone, same HTML to PDF/A-3a: median {bare:.2f} s (runs {runs_of(series['weasyprint'])}), "
        f"CPU {statistics.median(cpu['weasyprint']):.2f} s"
    )
    for name, label in (("ours", str(code or "this tree")), ("before", str(before))):
        if series[name]:
            ours = statistics.median(series[name])
            own = [o - w for o, w in zip(series[name], series["weasyprint"], strict=True)]
            ratio = [o / w for o, w in zip(series[name], series["weasyprint"], strict=True)]
            own_cpu = [o - w for o, w in zip(cpu[name], cpu["weasyprint"], strict=True)]
            print(f"  reporter run --no-send ({label}): median {ours:.2f} s (runs {runs_of(series[name])})")
            print(
                f"    cold start: reporter's own time on top of WeasyPrint alone, median of the rounds "
                f"{statistics.median(own):.2f} s (runs {runs_of(own)}); ratio {statistics.median(ratio):.2f}x"
            )
            print(
                f"    CPU seconds (user + system, children included) median {statistics.median(cpu[name]):.2f}, "
                f"{statistics.median(own_cpu):.2f} more than WeasyPrint alone; "
                f"peak RSS median {statistics.median(rss[name]) / 1e6:.0f} MB"
            )
    if series["chromium"]:
        chrome = statistics.median(series["chromium"])
        # Chromium's own CPU is not comparable: its renderer processes are not children it waits for
        print(
            f"  headless Chromium printing the same HTML: median {chrome:.2f} s (runs {runs_of(series['chromium'])}); "
            f"WeasyPrint alone {bare / chrome:.2f}x, reporter run {statistics.median(series['ours']) / chrome:.2f}x"
        )


STRESS = """
import datetime as dt, io, sys, time, pathlib
import pypdf
from reporter.config import load_config
from reporter.periods import Period
from reporter.compute.database import compute
from reporter.run.stages import render_pdf
c = load_config(pathlib.Path(sys.argv[1]), env={})
r = compute(c, Period.parse("2026-10", "month"), dt.datetime(2026, 11, 2, 6, tzinfo=dt.UTC))
t = time.perf_counter()
pdf = render_pdf(c, r)
print(time.perf_counter() - t, len(pypdf.PdfReader(io.BytesIO(pdf)).pages), len(pdf))
"""


def stress(runs: int, code: Path | None, pdf_rows: int | None) -> None:
    seconds, rss, pages = [], [], 0
    with tempfile.TemporaryDirectory() as tmp:
        path = stress_config(Path(tmp), pdf_rows=pdf_rows)
        for _ in range(runs):
            _, peak, out = timed([sys.executable, "-c", STRESS, str(path)], child_env(code), cwd=Path(tmp))
            render, pages, size = out.split()
            seconds.append(float(render))
            rss.append(peak)
    rows = "default pdf_rows" if pdf_rows is None else f"pdf_rows {pdf_rows}"
    print(f"stress ({rows}), {runs} fresh processes ({'code from ' + str(code) if code else 'this tree'})")
    print(
        f"  render (HTML + PDF/A): median {statistics.median(seconds):.2f} s (runs {', '.join(f'{x:.2f}' for x in seconds)})"
    )
    print(
        f"  peak RSS (process and children): median {statistics.median(rss) / 1e6:.0f} MB; {pages} pages, {int(size) / 1e3:.0f} kB"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--stress", action="store_true")
    parser.add_argument("--pdf-rows", type=int, default=None)
    parser.add_argument("--code", type=Path, default=None)
    parser.add_argument("--before", type=Path, default=None, help="another tree, run in the same rounds")
    parser.add_argument(
        "--no-chromium", action="store_true", help="skip Chromium (the cold ratio needs none)"
    )
    args = parser.parse_args()
    if args.stress:
        stress(args.runs, args.code, args.pdf_rows)
    else:
        demo(args.runs, args.code, args.before, with_chromium=not args.no_chromium)


if __name__ == "__main__":
    main()
