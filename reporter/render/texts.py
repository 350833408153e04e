"""The texts of the YAML that are small templates: ``delivery.email.subject`` and an objective
action's ``do`` (each language of it). One place says what each is rendered with at run time
(``subject_context``, ``action_context``, in the one environment ``text_environment``), and
``template_problems`` renders every one of them, whatever its ``when``, against a sample of that
same context at validation, so a misspelt name or a template the sandbox refuses stops
``reporter validate`` and the start of ``run`` (exit 2) rather than a scheduled run months later.

The configuration layer cannot import the renderer: ``load_checked`` passes ``template_problems``
to ``load_configs`` as an extra check, which places each problem at its key in the YAML.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import meta, nodes

from reporter.config.labels import Labels
from reporter.config.loader import Path_
from reporter.config.model import Config
from reporter.errors import RunError
from reporter.periods import Period
from reporter.render.context import Formatter
from reporter.render.sandbox import BoundedEnvironment, render

Found = tuple[Path_, str, str]  # (key path in the YAML, message, hint)


def text_environment() -> BoundedEnvironment:
    """The sandbox a YAML text renders in: bounded, undefined names an error, no escaping."""
    return BoundedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False)


def subject_context(labels: Labels, words: str, code: str) -> dict[str, Any]:
    """What ``delivery.email.subject`` reads: the YAML's ``report`` section (title and company in
    the labels' language) and the period in words (``label``) and as its code (``code``)."""
    return {"report": labels.report_fields(), "period": {"label": words, "code": code}}


def action_context(labels: Labels, period: str) -> dict[str, Any]:
    """What an action's ``do`` reads: ``report`` as for the subject, and the period's code."""
    return {"report": labels.report_fields(), "period": {"label": period}}


def load_checked(path: Path, env: Mapping[str, str] | None = None) -> list[Config]:
    """``load_configs``, the YAML's templates rendered too (``template_problems``)."""
    from reporter.config import load_configs  # the checks (DuckDB): not in the render server

    return load_configs(path, env, extra=template_problems)


def yaml_templates(config: Config) -> Iterator[tuple[Path_, str, str]]:
    """Every text of ``config`` that is rendered as a template: (key path, text, which kind)."""
    if config.delivery.email is not None:
        yield ("delivery", "email", "subject"), config.delivery.email.subject, "subject"
    for i, objective in enumerate(config.objectives):
        for j, action in enumerate(objective.actions):
            key: Path_ = ("objectives", i, "actions", j, "do")
            if isinstance(action.do, str):
                yield key, action.do, "action"
            else:
                for language, text in action.do.items():
                    yield (*key, language), text, "action"


def sample_contexts(config: Config) -> dict[str, dict[str, Any]]:
    """Each kind's context as a run builds it (the same functions), for the period a run without
    ``--period`` would report."""
    report = config.report
    period = Period.last_complete(dt.datetime.now(dt.UTC), report.grain, report.timezone)
    words = Formatter.for_report(report).period(period.label, period.start.isoformat(), report.grain)
    labels = Labels(config)
    return {
        "subject": subject_context(labels, words, period.label),
        "action": action_context(labels, period.label),
    }


def template_problems(config: Config) -> list[Found]:
    """Render each of the YAML's templates (``yaml_templates``) in the run's sandbox against the
    run's context: a name that is not in it, a syntax error, anything the sandbox refuses or
    any other failure is a problem at the text's key."""
    contexts = sample_contexts(config)
    found: list[Found] = []
    for key, text, kind in yaml_templates(config):
        context = contexts[kind]
        names = _names(context)
        hint = f"{'the subject' if kind == 'subject' else 'an action'} may use {', '.join(names)}"
        for message, close in _failures(text, context, names):
            found.append((key, message, f"did you mean '{close}'? {hint}" if close else hint))
    return found


def _failures(text: str, context: dict[str, Any], names: list[str]) -> list[tuple[str, str]]:
    """What is wrong with template ``text`` (message, a close name or ""), or nothing."""
    if "{" not in text:  # rendered as it is (html.render_text)
        return []
    env = text_environment()
    try:
        tree = env.parse(text)
        compiled = env.from_string(tree)
    except jinja2.TemplateSyntaxError as exc:
        return [(f"template error: {exc.message}", "")]
    except jinja2.TemplateError as exc:
        return [(f"template error: {exc}", "")]
    unknown = _unknown_names(tree, context, env)
    if unknown:
        return [(f"unknown name '{n}'", _close(n, names)) for n in unknown]
    try:
        render(compiled, context, "")
    except RunError as exc:
        reason = str(exc).removeprefix(": ").removeprefix("cannot render: ").rstrip(".")
        if not reason.startswith(("refused by", "rendering took", "template error", "the template")):
            reason = f"template error: {reason}"
        return [(reason, "")]
    return []


def _names(context: Mapping[str, Any]) -> list[str]:
    """The dotted names ``context`` offers: ``report.id``, ``report.title``, …, ``period.label``."""
    out: list[str] = []
    for key, value in context.items():
        if isinstance(value, Mapping):
            out.extend(f"{key}.{sub}" for sub in value)
        else:
            out.append(key)
    return out


def _close(name: str, names: list[str]) -> str:
    """The name ``name`` was likely meant to be: the closest of those with the same prefix
    (``report.titel`` → ``report.title``, ``reprot`` → ``report``), else ""."""
    parent, _, last = name.rpartition(".")
    siblings = {n.rpartition(".")[2]: n for n in names if n.rpartition(".")[0] == parent}
    if not parent:
        siblings.update({n.partition(".")[0]: n.partition(".")[0] for n in names})
    close = difflib.get_close_matches(last, list(siblings), n=1, cutoff=0.6)
    return siblings[close[0]] if close else ""


def _chain(node: nodes.Node) -> list[str] | None:
    """``report.title`` or ``report['title']`` as ["report", "title"]; None for anything else."""
    parts: list[str] = []
    while True:
        if isinstance(node, nodes.Getattr):
            parts.append(node.attr)
            node = node.node
        elif (
            isinstance(node, nodes.Getitem)
            and isinstance(node.arg, nodes.Const)
            and isinstance(node.arg.value, str)
        ):
            parts.append(node.arg.value)
            node = node.node
        elif isinstance(node, nodes.Name):
            parts.append(node.name)
            return parts[::-1]
        else:
            return None


def _unknown_names(tree: nodes.Template, context: Mapping[str, Any], env: jinja2.Environment) -> list[str]:
    """The names ``tree`` reads that ``context`` lacks, in every branch (also one a render with
    this sample would not take): a variable that is neither in the context, nor a global, nor set
    in the template; an attribute of the context's mappings that they do not have. Attributes of
    other values (a text's ``upper``), and those starting with ``_``, are left to the render."""
    out: list[str] = []
    for name in sorted(meta.find_undeclared_variables(tree)):
        if name not in context and name not in env.globals:
            out.append(name)
    local = {n.name for n in tree.find_all(nodes.Name) if n.ctx != "load"}
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        chain = _chain(node)
        if chain is None or chain[0] not in context or chain[0] in local:
            continue
        value: Any = context[chain[0]]
        for i, part in enumerate(chain[1:], start=2):
            if not isinstance(value, Mapping) or part.startswith("_"):
                break
            if part not in value and not hasattr(value, part):
                dotted = ".".join(chain[:i])
                if dotted not in out:
                    out.append(dotted)
                break
            value = value.get(part)
    return out
