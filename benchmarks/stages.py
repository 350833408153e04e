"""Where a fresh ``reporter run --no-send`` of the demo spends its time, stage by stage: the CPU
time of the main thread (the figure that survives a loaded machine) and the wall time between
stage boundaries, medians of several fresh processes.

    .venv/bin/python benchmarks/stages.py [--runs 5] [--before DIR]

Each process runs the CLI in-process with the background import of WeasyPrint switched off, so
that importing the renderer is counted on its own line instead of hiding in the other thread
(a real run overlaps it with the DuckDB work). The stages are found by wrapping the functions
that carry them; a stage whose function a tree does not have is left out (its time falls into
the next line). ``--before DIR`` measures another tree (``git archive`` of an earlier commit) in
the same rounds. Each tree's package is byte-compiled first, as pip does when it installs it, so
that no process compiles reporter's sources (PYTHONDONTWRITEBYTECODE is dropped for the same reason).
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = r"""
import functools, importlib, json, sys, time
rows = []
last = [time.perf_counter(), time.thread_time()]
def mark(name):
    w, c = time.perf_counter(), time.thread_time()
    rows.append((name, w - last[0], c - last[1]))
    last[:] = [w, c]
from reporter.render import warmup
warmup.start = lambda: None  # the renderer's import on its own line below
from reporter import cli
mark("import reporter.cli")
def wrap(module, name, label, *elsewhere):
    # the first of (module, name), *elsewhere that a tree has: a function that moved between
    # commits is still found in the older tree (one wrap only, so no stage is counted twice)
    for module, name in ((module, name), *elsewhere):
        try:
            mod = importlib.import_module(module)
            func = getattr(mod, name)
            break
        except (ImportError, AttributeError):
            continue
    else:
        return
    @functools.wraps(func)
    def timed(*args, **kwargs):
        mark("(between stages)")
        try:
            return func(*args, **kwargs)
        finally:
            mark(label)
    setattr(mod, name, timed)
for module in ("reporter.render.texts", "reporter.run.pipeline", "reporter.render.html",
               "reporter.delivery.archive", "reporter.delivery.send"):
    importlib.import_module(module)
try:
    importlib.import_module("reporter.run.stages")  # where the run's stages live since issue 25
except ImportError:
    pass
mark("import reporter's modules (pydantic, DuckDB, Jinja, Babel, ...)")
import weasyprint, fontTools.subset
mark("import WeasyPrint and fontTools (WeasyPrint alone pays it too)")
original_render = weasyprint.HTML.render
def render(self, *a, **k):
    mark("(between stages)")
    out = original_render(self, *a, **k)
    mark("WeasyPrint layout (WeasyPrint alone pays it too)")
    return out
weasyprint.HTML.render = render
wrap("weasyprint", "HTML", "HTML parse (WeasyPrint alone pays it too)")
wrap("reporter.render.texts", "load_checked", "YAML, schema, cross-checks, data check")
wrap("reporter.run.stages", "report_results", "compute and insight sentences",
     ("reporter.run.pipeline", "report_results"))
wrap("reporter.render.html", "render_html", "report HTML (Jinja)")
wrap("reporter.delivery.archive", "make_pdfa", "WeasyPrint writes the PDF/A (WeasyPrint alone pays it too)")
wrap("reporter.run.stages", "_build_deliveries", "digest email (Jinja, sparklines, CSS inlined)",
     ("reporter.run.pipeline", "_build_deliveries"))
cli.main(["run", "config/example.yaml", "--period", "2026-10", "--no-send", "--output", "out"])
mark("files written, end of the run")
print(json.dumps(rows))
"""


def once(tree: Path, folder: Path) -> list[tuple[str, float, float]]:
    shutil.copytree(tree / "config", folder / "config")
    # With the tree's bytecode, as an installed reporter has it: under PYTHONDONTWRITEBYTECODE a
    # source tree's modules would be compiled again in every process (WeasyPrint's never are).
    compileall.compile_dir(tree / "reporter", quiet=1)
    # Every stage in this one process (the render's too: REPORTER_RENDER_CHILD=0), so that each
    # is timed; a real run prints the PDF in a child process while it builds the e-mail.
    env = dict(os.environ, PYTHONPATH=str(tree), REPORTER_RENDER_CHILD="0")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=folder, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    return [tuple(r) for r in json.loads(done.stdout.strip().splitlines()[-1])]  # type: ignore[misc]


def merged(rows: list[tuple[str, float, float]]) -> dict[str, tuple[float, float]]:
    out: dict[str, tuple[float, float]] = {}
    for name, wall, cpu in rows:
        w, c = out.get(name, (0.0, 0.0))
        out[name] = (w + wall, c + cpu)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--before", type=Path, default=None)
    args = parser.parse_args()
    trees = {"this tree": ROOT} | ({str(args.before): args.before} if args.before else {})
    found: dict[str, list[dict[str, tuple[float, float]]]] = {name: [] for name in trees}
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(args.runs):
            for name, tree in trees.items():
                found[name].append(merged(once(tree, Path(tmp) / f"{n}-{len(found[name])}-{tree.name}")))
    print(f"{args.runs} fresh processes each, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    names = list(dict.fromkeys(k for runs in found.values() for run in runs for k in run))
    head = "".join(f" | {t} CPU s | wall s" for t in trees)
    print(f"stage{head}")
    totals = {t: [0.0, 0.0] for t in trees}
    for stage in names:
        cells = []
        for t, runs in found.items():
            cpu = statistics.median(run.get(stage, (0.0, 0.0))[1] for run in runs)
            wall = statistics.median(run.get(stage, (0.0, 0.0))[0] for run in runs)
            totals[t][0] += cpu
            totals[t][1] += wall
            cells.append(f" | {cpu:.3f} | {wall:.3f}")
        print(f"{stage}{''.join(cells)}")
    print("sum of the medians" + "".join(f" | {c:.3f} | {w:.3f}" for c, w in totals.values()))


if __name__ == "__main__":
    main()
