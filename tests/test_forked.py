"""The report's PDF is rendered in a forked child while the run builds its e-mail
(``reporter.render.forked``), and the command leaves without the interpreter's teardown
(``cli.leave``): the same files byte for byte, the same errors, no font folder left behind."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from reporter.render import forked
from tests.conftest import ROOT

EPOCH = "1796000000"  # 2026-11-30: October 2026 is complete


@pytest.fixture
def demo_copy(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "config", tmp_path / "config")
    return tmp_path / "config" / "example.yaml"


RUN = textwrap.dedent(
    """
    import json, os, sys, threading
    from reporter import cli
    from reporter.render import forked, pdf
    from tests.test_forked import _die, _unpicklable
    config, out, how = sys.argv[1:4]
    stop = threading.Event()
    if how == "die":  # the render's child kills itself as it starts (pickled by reference)
        pdf.in_render_child = _die
    elif how == "lambda":  # the same, as a job that does not pickle
        pdf.in_render_child = lambda: _die()
    elif how == "thread":  # another thread runs meanwhile
        threading.Thread(target=stop.wait).start()
    elif how == "unpicklable":  # the render raises an exception that cannot go through a pipe
        pdf.in_render_child = _unpicklable
    elif how == "noserver":  # no render server: a child is forked at the render
        forked.serve = lambda: False
    try:
        code = cli.main(["run", config, "--period", "2026-10", "--no-send", "--output", out])
    finally:
        stop.set()
    try:
        os.waitpid(-1, os.WNOHANG)
        left = True
    except ChildProcessError:
        left = False
    print(json.dumps([code, forked.servers, forked.served, forked.forks, left]))
    """
)


def _run(config: Path, out: Path, child: str, how: str = "") -> tuple[list[int], str]:
    """``reporter run`` in a fresh process (the fork's condition, no other thread, holds there
    whatever the test session runs): the exit code, the servers forked, the renders they and
    the children forked at the render did, and stderr."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), SOURCE_DATE_EPOCH=EPOCH, **{forked.ENV: child})
    done = subprocess.run(
        [sys.executable, "-c", RUN, str(config), str(out), how],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def _files(out: Path) -> dict[str, bytes]:
    found = {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    return {name: data for name, data in found.items() if not name.endswith(".eml")}  # MIME boundaries


def test_the_report_is_rendered_by_the_render_server_and_the_files_are_those_of_this_process(
    demo_copy, tmp_path
):
    said, _ = _run(demo_copy, tmp_path / "child", "1")
    assert said == [0, 1, 1, 0, False]  # the server forked as the run started rendered it
    said, _ = _run(demo_copy, tmp_path / "here", "0")
    assert said == [0, 0, 0, 0, False]  # REPORTER_RENDER_CHILD=0: rendered in the run's own process
    child, here = _files(tmp_path / "child"), _files(tmp_path / "here")
    assert sorted(child) == ["marketing-monthly/2026-10/marketing-monthly_2026-10.pdf",
                             "marketing-monthly/2026-10/results.json"]  # fmt: skip
    assert child == here
    eml = {p.name: p.read_bytes() for p in (tmp_path / "child").rglob("email.eml")}
    assert b"marketing-monthly_2026-10.pdf" in eml["email.eml"]


def test_without_a_server_the_child_is_forked_at_the_render_with_the_same_files(demo_copy, tmp_path):
    said, _ = _run(demo_copy, tmp_path / "forked", "1", "noserver")
    assert said == [0, 0, 0, 1, False]
    said, _ = _run(demo_copy, tmp_path / "here", "0")
    assert said == [0, 0, 0, 0, False]
    assert _files(tmp_path / "forked") == _files(tmp_path / "here")


def test_a_run_that_stops_before_its_render_leaves_no_server_behind(demo_copy, tmp_path):
    text = demo_copy.read_text(encoding="utf-8")
    demo_copy.write_text(
        text.replace("  template: executive ", "  templat: executive  ", 1), encoding="utf-8"
    )
    said, err = _run(demo_copy, tmp_path / "out", "1")
    assert said == [2, 1, 0, 0, False]  # the server got no job, was stopped and reaped
    assert "templat" in err


def test_a_thread_running_keeps_the_render_in_this_process(demo_copy, tmp_path):
    said, _ = _run(demo_copy, tmp_path / "out", "1", "thread")
    assert said == [0, 0, 0, 0, False]  # a lock held by that thread would stay held in a child


def _without_alt(config: Path) -> None:
    custom = config.parent / "withlogo"
    custom.mkdir()
    (custom / "logo.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>')
    logo = (custom / "logo.svg").as_uri()
    (custom / "report.html").write_text(
        '{% extends "default:report.html" %}{% block cover %}<section class="cover">'
        f'<h1 class="title">T</h1><img src="{logo}"></section>{{% endblock %}}'
    )
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("  template: executive ", "  template: withlogo    ", 1), encoding="utf-8")


@pytest.mark.parametrize(("child", "path"), [("1", [1, 1, 1, 0, False]), ("0", [1, 0, 0, 0, False])])
def test_a_render_error_in_the_child_is_the_same_error_and_nothing_is_written(
    demo_copy, tmp_path, child, path
):
    _without_alt(demo_copy)
    said, err = _run(demo_copy, tmp_path / "out", child)
    assert said == path
    logo = (demo_copy.parent / "withlogo" / "logo.svg").as_uri()
    assert f'PDF rendering reported problems: Image "{logo}" has no required alt description' in err
    assert not (tmp_path / "out").exists() or not any(p.is_file() for p in (tmp_path / "out").rglob("*"))


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _unpicklable() -> None:
    class Local(Exception):  # a class defined here: its instances do not pickle
        pass

    raise Local("boom")


def test_an_error_that_does_not_pickle_still_says_what_happened(demo_copy, tmp_path):
    said, err = _run(demo_copy, tmp_path / "out", "1", "unpicklable")
    assert said == [1, 1, 1, 0, False]  # the server rendered, failed, answered
    assert "PDF rendering failed: Local: boom" in err
    assert "stopped without an answer" not in err
    assert not (tmp_path / "out").exists() or not any(p.is_file() for p in (tmp_path / "out").rglob("*"))


@pytest.mark.parametrize(
    ("how", "path"),
    [
        ("die", [1, 1, 1, 0, False]),  # the render server, killed as it starts the job
        ("lambda", [1, 1, 0, 1, False]),  # a job that does not pickle: a child forked at the render instead
    ],
)
def test_a_child_killed_mid_render_fails_the_run_loudly_and_writes_nothing(demo_copy, tmp_path, how, path):
    said, err = _run(demo_copy, tmp_path / "out", "1", how)
    assert said == path
    assert "the PDF renderer stopped without an answer (killed by signal 9)" in err
    assert not (tmp_path / "out").exists() or not any(p.is_file() for p in (tmp_path / "out").rglob("*"))


def _reporter(args: list[str], cwd: Path, tmp: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, TMPDIR=str(tmp), SOURCE_DATE_EPOCH=EPOCH, PYTHONPATH=str(ROOT))
    command = [sys.executable, "-m", "reporter", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)


def test_a_run_leaves_no_font_folder_in_the_temporary_directory(demo_copy, tmp_path):
    """WeasyPrint copies the template's fonts to a temporary folder that its ``__del__`` removes;
    at the interpreter's teardown that failed and left 0.7 MB behind at every run."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    for child in ("1", "0"):
        done = _reporter(
            ["run", str(demo_copy), "--period", "2026-10", "--no-send", "--output", str(tmp_path / child)],
            demo_copy.parent,
            tmp,
        )
        assert done.returncode == 0, done.stderr
        assert "Exception ignored" not in done.stderr
        assert list(tmp.iterdir()) == []


LEAVE = textwrap.dedent(
    """
    import sys, threading
    from reporter.cli import leave
    class Torn:
        def __del__(self):
            print("torn down", flush=True)
    kept = Torn()
    import atexit
    atexit.register(lambda: print("atexit ran", flush=True))
    if sys.argv[1] == "thread":
        stop = threading.Event()
        threading.Thread(target=lambda: stop.wait(0.2)).start()
    print("leaving", flush=True)
    leave(3)
    """
)


@pytest.mark.parametrize(("mode", "torn"), [("alone", False), ("thread", True)])
def test_leave_skips_the_teardown_unless_a_thread_still_runs(tmp_path, mode, torn):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-c", LEAVE, mode], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 3
    lines = done.stdout.split()
    assert lines[:1] == ["leaving"]
    assert "ran" in lines  # atexit handlers run either way
    assert ("torn" in lines) is torn


STARTS = textwrap.dedent(
    """
    import json, os, sys
    from reporter import cli
    from reporter.render import forked
    forked_at = {"at_fork": sorted(sys.modules)}
    real_fork = os.fork
    def fork():
        forked_at["at_fork"] = sorted(sys.modules)
        raise SystemExit(0)  # far enough: what the run had imported when it forked its server
    if sys.argv[1] == "handover":  # what the run had imported when it handed its job over
        real_hand = forked._hand_to_server
        def hand(job):
            forked_at["at_fork"] = sorted(sys.modules)
            return real_hand(job)
        forked._hand_to_server = hand
        cli.main(["run", sys.argv[2], "--period", "2026-10", "--no-send", "--output", sys.argv[3]])
        print(json.dumps(forked_at["at_fork"]))
    elif sys.argv[1] == "run":
        os.fork = fork
        try:
            cli.main(["run", sys.argv[2], "--period", "2026-10", "--no-send", "--output", sys.argv[3]])
        except SystemExit:
            pass
        print(json.dumps(forked_at["at_fork"]))
    else:
        before = set(sys.modules)
        forked._early_imports()
        print(json.dumps(sorted(set(sys.modules) - before)))
    """
)


def test_the_run_forks_its_server_before_the_heavy_imports_and_the_server_imports_the_printer_only(
    demo_copy: Path, tmp_path: Path
):
    """``reporter run`` forks its render server before importing pydantic, DuckDB or the
    configuration's checks (0.2 s that the server would otherwise wait for), and the server
    imports the renderer and the printer only: the run renders the HTML, the server prints it
    (the configuration's model, Jinja and Babel were 0.2 s of its imports, the compute stage
    0.4 s when ``reporter.run.stages`` imported it at its top). The run imports the mailer
    (SMTP, TLS) after the hand-over, while the server prints."""

    def modules(*argv: str) -> set[str]:
        done = subprocess.run(
            [sys.executable, "-c", STARTS, *argv], cwd=ROOT, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        return set(json.loads(done.stdout.splitlines()[-1]))

    at_fork = modules("run", str(demo_copy), str(tmp_path / "out"))
    assert "reporter.cli" in at_fork
    assert not {"pydantic", "duckdb", "reporter.config.model", "reporter.config.checks"} & at_fork
    handed = modules("handover", str(demo_copy), str(tmp_path / "out2"))
    assert {"duckdb", "jinja2", "reporter.render.html"} <= handed
    assert not {"smtplib", "ssl", "reporter.delivery.send", "reporter.delivery.mailer"} & handed  # to send
    server = modules("server")
    assert {"weasyprint", "reporter.run.printer", "reporter.delivery.archive"} <= server
    assert (
        not {
            *("duckdb", "pydantic", "jinja2", "babel", "sqlglot", "pandas"),
            *(
                "reporter.config.model",
                "reporter.run.stages",
                "reporter.compute.database",
                "reporter.render.html",
            ),
        }
        & server
    )
