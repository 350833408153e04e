"""Wall time of `reporter validate config/example.yaml`, cold (a fresh process each time), now
against a baseline commit, runs interleaved so that a busy machine slows both alike.

    .venv/bin/python benchmarks/validate.py --baseline ae2531b --runs 15

The baseline is the commit's tree exported to a temporary folder; each side runs from its own
folder, so `python -m reporter` imports that side's code (same venv, same libraries). Prints the median and the spread of wall and CPU (user + system)
seconds of each.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def once(root: Path, env: dict[str, str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "reporter", "validate", "config/example.yaml"],
        cwd=root,  # `python -m` puts the current folder first on sys.path: this side's code
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline", help="a git commit to compare with")
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    env_now = {**os.environ, "PYTHONPATH": str(ROOT)}
    sides: dict[str, tuple[Path, dict[str, str]]] = {"now": (ROOT, env_now)}
    with tempfile.TemporaryDirectory() as tmp:
        if args.baseline:
            archive = subprocess.run(
                ["git", "-C", str(ROOT), "archive", args.baseline], check=True, capture_output=True
            ).stdout
            tar_path = Path(tmp) / "base.tar"
            tar_path.write_bytes(archive)
            with tarfile.open(tar_path) as tar:
                tar.extractall(Path(tmp) / "base", filter="data")
            base = Path(tmp) / "base"
            sides = {args.baseline: (base, {**os.environ, "PYTHONPATH": str(base)}), **sides}
        for root, env in sides.values():  # warm the page cache
            once(root, env)
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in sides}
        for _ in range(args.runs):
            for name, (root, env) in sides.items():
                times[name].append(once(root, env))
    load = os.getloadavg()[0]
    print(f"{args.runs} interleaved runs each, load average {load:.1f} on {os.cpu_count()} cores")
    for name, runs in times.items():
        walls = sorted(w for w, _ in runs)
        cpus = sorted(c for _, c in runs)
        print(
            f"{name:>10}: wall median {statistics.median(walls):.2f} s "
            f"(min {walls[0]:.2f}, max {walls[-1]:.2f}), CPU median {statistics.median(cpus):.2f} s"
        )


if __name__ == "__main__":
    main()
