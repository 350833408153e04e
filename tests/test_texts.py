# ruff: noqa: E501  (the expected messages are long lines, kept whole to be read as printed)
"""The YAML's texts that are templates (``delivery.email.subject``, an action's ``do``) are
rendered at validation, every one whatever its ``when``, in the run's sandbox against the run's
context: a misspelt name or a refused template is an error at its key (exit 2), for
``reporter validate`` and at the start of ``reporter run``, never a failed scheduled run."""

from __future__ import annotations

import email
import email.policy
import json

import pytest

from reporter.cli import main
from reporter.config import load_config
from reporter.config.labels import Labels
from reporter.errors import ConfigError, RunError
from reporter.render.html import render_text
from reporter.render.texts import action_context, sample_contexts, subject_context
from reporter.run.schedule import Scheduler
from tests.test_validate import validate, write

REPORT = (
    "report.id, report.title, report.company, report.locale, report.currency, report.timezone, "
    "report.grain, report.fiscal_year_start, report.template, report.output_dir, report.logo, report.url"
)
SUBJECT = f"the subject may use {REPORT}, period.label, period.code"
ACTION = f"an action may use {REPORT}, period.label"
NOTHING = "1 error: nothing was run or sent."


def subject(text: str) -> dict[int, str]:
    return {23: f"  email: {{from: a@acme.test, to: [b@acme.test], subject: {text}}}"}


def actions(text: str, target: int = 100) -> dict[int, str]:
    return {
        18: f"  - {{id: grow, title: Grow, kpi: revenue, target: {{value: {target}}}, owner: Boss, due: 2026-12-31, actions: {text}}}"
    }


CASES = {
    "a misspelt attribute in the subject": (
        subject('"{{ report.titel }} {{ period.label }}"'),
        [
            f"F:23:58: delivery.email.subject: unknown name 'report.titel'; did you mean 'report.title'? {SUBJECT}"
        ],
    ),
    "a misspelt variable in the subject": (
        subject('"{{ reprot.title }}"'),
        [f"F:23:58: delivery.email.subject: unknown name 'reprot'; did you mean 'report'? {SUBJECT}"],
    ),
    "the subject's sandbox refuses ''.__class__": (
        subject("\"{{ ''.__class__.__mro__[1].__subclasses__() }}\""),
        [
            f"F:23:58: delivery.email.subject: refused by the template sandbox: access to attribute '__class__' of 'str' object is unsafe; {SUBJECT}"
        ],
    ),
    "a misspelt attribute in an action": (
        actions('[{when: always, do: "Call by {{ period.lable }}"}]'),
        [
            f"F:18:124: objectives[0].actions[0].do: unknown name 'period.lable'; did you mean 'period.label'? {ACTION}"
        ],
    ),
    "an action has no period.code (the subject has)": (
        actions('[{when: always, do: "Call by {{ period.code }}"}]'),
        [f"F:18:124: objectives[0].actions[0].do: unknown name 'period.code'; {ACTION}"],
    ),
    "a name in a branch the sample render does not take": (
        actions('[{when: always, do: "{% if false %}{{ report.titel }}{% endif %}ok"}]'),
        [
            f"F:18:124: objectives[0].actions[0].do: unknown name 'report.titel'; did you mean 'report.title'? {ACTION}"
        ],
    ),
    "one language of an action": (
        actions('[{when: always, do: {fr: "Appeler {{ period.label }}", en: "Call {{ period.lable }}"}}]'),
        [
            f"F:18:163: objectives[0].actions[0].do.en: unknown name 'period.lable'; did you mean 'period.label'? {ACTION}"
        ],
    ),
    "a syntax error in an action": (
        actions('[{when: always, do: "Call by {{ period.label }"}]'),
        [f"F:18:124: objectives[0].actions[0].do: template error: unexpected '}}'; {ACTION}"],
    ),
    "cycler is not in an action's sandbox": (
        actions('[{when: always, do: "{{ cycler.__init__.__globals__.os.environ }}"}]'),
        [f"F:18:124: objectives[0].actions[0].do: unknown name 'cycler'; {ACTION}"],
    ),
    "a range past the sandbox's bound in an action": (
        actions('[{when: on_track, do: "{% for x in range(100000000) %}x{% endfor %}"}]'),
        [
            f"F:18:126: objectives[0].actions[0].do: refused by the template sandbox: a range of 100,000,000 items is larger than the limit of 1,000,000; {ACTION}"
        ],
    ),
    "a name the render misses through a variable": (
        actions('[{when: always, do: "{% set r = report %}{{ r.titel }}"}]'),
        [
            f"F:18:124: objectives[0].actions[0].do: template error: 'dict object' has no attribute 'titel'; {ACTION}"
        ],
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_a_bad_template_in_the_yaml_is_a_validation_error_at_its_key(tmp_path, capsys, name):
    changes, expected = CASES[name]
    code, lines = validate(write(tmp_path, changes), capsys)
    assert (code, lines) == (2, [*expected, NOTHING])


def test_every_bad_template_is_reported_at_once(tmp_path, capsys):
    changes = {
        **subject('"{{ report.titel }}"'),
        **actions(
            '[{when: off_track, do: "{{ period.lable }}"}, {when: at_risk, do: "{{ report.__class__ }}"}]'
        ),
    }
    code, lines = validate(write(tmp_path, changes), capsys)
    assert code == 2
    assert lines == [
        f"F:18:127: objectives[0].actions[0].do: unknown name 'period.lable'; did you mean 'period.label'? {ACTION}",
        f"F:18:170: objectives[0].actions[1].do: refused by the template sandbox: access to attribute '__class__' of 'dict' object is unsafe; {ACTION}",
        f"F:23:58: delivery.email.subject: unknown name 'report.titel'; did you mean 'report.title'? {SUBJECT}",
        "3 errors: nothing was run or sent.",
    ]


@pytest.mark.parametrize(
    "text",
    [
        '"{{ report.title | upper }} {{ report.title.upper() }} {{ period.code }} {{ period.label }}"',
        '"{% for k, v in report.items() %}{{ k }}{% endfor %}{{ report.url or report.id }}"',
        '"{{ report }} {{ period }}"',
        '"No template at all"',
    ],
)
def test_what_the_run_renders_validates(tmp_path, capsys, text):
    code, lines = validate(write(tmp_path, subject(text)), capsys)
    assert code == 0, lines


def test_a_latent_off_track_action_is_refused_while_the_objective_is_on_track(tmp_path, capsys):
    """The objective is on track in the data (revenue 15 against a target of 10): the run would
    render the on_track action only, and the misspelt off_track one would break the first run
    that finds the objective off track. Validation and the start of run refuse it now."""
    bad = '[{when: off_track, do: "Call before {{ period.lable }}"}, {when: on_track, do: "Keep going in {{ period.label }} at {{ report.company or report.id }}"}]'
    path = write(tmp_path, actions(bad, target=10))
    expected = f"F:18:126: objectives[0].actions[0].do: unknown name 'period.lable'; did you mean 'period.label'? {ACTION}"
    assert validate(path, capsys) == (2, [expected, NOTHING])

    out = tmp_path / "out"
    code = main(["run", str(path), "--period", "2026-10", "--no-send", "--output", str(out)])
    err = capsys.readouterr().err.replace(str(path), "F").splitlines()
    assert (code, err) == (2, [expected, NOTHING])
    assert not out.exists()  # refused before anything ran
    with pytest.raises(ConfigError) as caught:  # the scheduler refuses it when it (re)loads
        Scheduler(path, output=out, env={}).load()
    assert str(caught.value).replace(str(path), "F") == expected

    # The same report with the name fixed: the objective is indeed on track, and the run renders
    # what validation rendered (the on_track action, the subject's period.code).
    fixed = bad.replace("period.lable", "period.label")
    changes = {**actions(fixed, target=10), **subject('"{{ report.id }} {{ period.code }}"')}
    path = write(tmp_path, changes, ["quality: {require_complete_period: false}"])  # data ends on 2 Oct
    assert validate(path, capsys)[0] == 0
    code = main(["run", str(path), "--period", "2026-10", "--no-send", "--output", str(out)])
    assert code == 0, capsys.readouterr().err
    folder = out / "demo" / "2026-10"
    results = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    (objective,) = results["objectives"]
    assert (objective["status"], [a["when"] for a in objective["actions"]]) == ("on_track", ["on_track"])
    message = email.message_from_bytes((folder / "email.eml").read_bytes(), policy=email.policy.default)
    assert message["Subject"].startswith("demo 2026-10")
    assert "Keep going in 2026-10 at demo" in message.get_body(("plain",)).get_content()


def test_the_sample_context_is_the_one_the_run_builds(tmp_path):
    """Validation's contexts come from the functions the run calls (digest.py, html.py,
    workbook.py): the same names, the period a run without --period reports."""
    config = load_config(write(tmp_path), env={})
    labels = Labels(config)
    contexts = sample_contexts(config)
    assert contexts["subject"].keys() == subject_context(labels, "x", "y").keys() == {"report", "period"}
    assert contexts["subject"]["period"].keys() == {"label", "code"}
    assert contexts["action"] == action_context(labels, contexts["subject"]["period"]["code"])
    assert contexts["action"]["report"] == labels.report_fields()


def test_the_run_keeps_its_own_sandbox(tmp_path):
    """Validation is the first wall; the run's render still refuses on its own."""
    config = load_config(write(tmp_path), env={})
    context = action_context(Labels(config), "2026-10")
    assert render_text("Call {{ report.title }} {{ period.label }}", context, "w") == "Call Demo 2026-10"
    with pytest.raises(RunError) as caught:
        render_text("{{ ''.__class__ }}", context, "objective 'grow' action 1")
    assert str(caught.value) == (
        "objective 'grow' action 1: cannot render \"{{ ''.__class__ }}\": refused by the template "
        "sandbox: access to attribute '__class__' of 'str' object is unsafe."
    )
    with pytest.raises(RunError) as caught:
        render_text("{{ period.lable }}", context, "objective 'grow' action 1")
    assert str(caught.value) == (
        "objective 'grow' action 1: cannot render '{{ period.lable }}': 'dict object' has no attribute 'lable'"
    )
