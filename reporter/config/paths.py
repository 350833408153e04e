"""Where the paths a report's YAML names may lead: inside the configuration's folder, the output
folder, or a folder the operator allows.

The YAML's author chooses paths (data files, the template folder, the logo, the CA file, the
output and archive folders); the operator chooses which folders of the machine those may reach,
on the command line (``--allow-dir DIR``, repeatable) or in the environment
(``REPORTER_ALLOW_DIRS``, folders separated by ``:``). Every path is judged once ``..`` and
symbolic links are resolved, so neither can lead out of an allowed folder.

========================  ==============================================================
``sources.*.path``         the configuration's folder, the output folder or an allowed one
``report.template``        (a folder), ``report.logo``, ``delivery.email.smtp.ca_file``: the same
``report.output_dir``      the configuration's folder or an allowed one (it *is* the output folder)
``delivery.archive.dir``   the output folder or an allowed one (it is written to)
========================  ==============================================================
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ENV = "REPORTER_ALLOW_DIRS"
OPTION = "--allow-dir"


@dataclass(frozen=True)
class _Operator:
    allowed: tuple[Path, ...] = ()
    output: Path | None = None  # --output, when the command line gives it
    known: bool = False  # set by the command line: the output folder is known at validation


_OPERATOR = _Operator()


@contextlib.contextmanager
def operator_paths(
    allowed: Sequence[Path] = (), output: Path | None = None, *, runs: bool = True
) -> Iterator[None]:
    """What the command line says for the time of one command: the folders ``--allow-dir``
    allows and the ``--output`` folder (None: the report's ``output_dir``, else ``./output``).
    ``runs``: the command runs reports into that output folder (``reproduce`` does not: it
    archives nothing, so an archive folder is not judged)."""
    global _OPERATOR
    before = _OPERATOR
    _OPERATOR = _Operator(tuple(allowed), output if runs else None, known=runs)
    try:
        yield
    finally:
        _OPERATOR = before


def allowed_dirs(env: Mapping[str, str] | None = None) -> list[Path]:
    """The folders the operator allows: ``--allow-dir`` and ``REPORTER_ALLOW_DIRS``."""
    text = (os.environ if env is None else env).get(ENV, "")
    from_env = [Path(part) for part in text.split(os.pathsep) if part.strip()]
    return [folder.resolve() for folder in [*_OPERATOR.allowed, *from_env]]


def output_given() -> bool:
    """Whether the command line gave ``--output`` (the YAML's ``output_dir`` is then unused)."""
    return _OPERATOR.output is not None


def output_folder(output_dir: Path | None) -> Path | None:
    """The output folder validation judges against: ``--output``, else the report's
    ``output_dir`` (resolved by the caller), else ``./output``; None when neither the command
    line nor the YAML says (a library call: ``run_report`` checks with the folder it uses)."""
    if _OPERATOR.output is not None:
        return _OPERATOR.output.resolve()
    if output_dir is not None:
        return output_dir.resolve()
    return Path("output").resolve() if _OPERATOR.known else None


def inside(path: Path, folders: Iterable[Path]) -> bool:
    """Whether ``path``, ``..`` and symbolic links resolved, lies in one of ``folders``."""
    real = path.resolve()
    return any(real.is_relative_to(folder.resolve()) for folder in folders)


def allow_hint() -> str:
    return f"or let the operator allow its folder with {OPTION} DIR (or {ENV})"
