"""Texts that read differently from what they are: an address or a subject with a
bidirectional control or a zero-width character, a display name whose encoded words decode to
a line break, and durations no clock can hold are located validation errors."""

from __future__ import annotations

import json

import pytest

from reporter.config import load_config
from reporter.errors import ConfigError
from tests.test_exactly_once import tiny

INVISIBLE_HINT = (
    "it can make the text read differently from what it is: delete it (retype the text if unsure)"
)


def problems(tmp_path, old: str, new: str) -> list[str]:
    path = tiny(tmp_path, 2525, to=["boss@acme.test"], name="texts")
    path.write_text(path.read_text().replace(old, new, 1))
    with pytest.raises(ConfigError) as exc:
        load_config(path, env={})
    return [str(p).removeprefix(str(path)) for p in exc.value.problems]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param(
            "to: [boss@acme.test]",
            "to: [" + json.dumps("moc.live\u202e@acme.test", ensure_ascii=False) + "]",
            ":13:10: delivery.email.to[0]: contains the invisible character U+202E RIGHT-TO-LEFT OVERRIDE; "
            + INVISIBLE_HINT,
            id="rtl-override-address",
        ),
        pytest.param(
            "alerts_to: [ops@acme.test]",
            "alerts_to: [" + json.dumps("ops@acme\u2066.test", ensure_ascii=False) + "]",
            ":10:15: delivery.alerts_to[0]: contains the invisible character U+2066 LEFT-TO-RIGHT ISOLATE; "
            + INVISIBLE_HINT,
            id="isolate-alert-address",
        ),
        pytest.param(
            "    from: reporting@acme.test",
            "    subject: "
            + json.dumps("Pay\u200bment due", ensure_ascii=False)
            + "\n    from: reporting@acme.test",
            ":12:14: delivery.email.subject: contains the invisible character U+200B ZERO WIDTH SPACE; "
            + INVISIBLE_HINT,
            id="zero-width-subject",
        ),
        pytest.param(
            "    from: reporting@acme.test",
            "    from: " + json.dumps("\ufeffReports <reporting@acme.test>", ensure_ascii=False),
            ":12:11: delivery.email.from: contains the invisible character U+FEFF ZERO WIDTH NO-BREAK SPACE; "
            + INVISIBLE_HINT,
            id="bom-from",
        ),
        pytest.param(
            "    from: reporting@acme.test",
            '    from: "=?utf-8?q?Evil=0D=0ABcc=3A_x=40y.test?= <reporting@acme.test>"',
            ":12:11: delivery.email.from: contains the control character U+000D once its encoded words "
            "(=?…?=) are decoded; write the name as plain text, on one line",
            id="encoded-crlf-from",
        ),
        pytest.param(
            "    from: reporting@acme.test",
            '    from: "=?utf-8?b?UmVwb3J0cyDigK4=?= <reporting@acme.test>"',
            ":12:11: delivery.email.from: contains the invisible character U+202E RIGHT-TO-LEFT OVERRIDE; "
            + INVISIBLE_HINT,
            id="encoded-rtl-from",
        ),
        pytest.param(
            "  alerts_to:",
            "  give_up_after: 99999999999999999999d\n  alerts_to:",
            ":10:18: delivery.give_up_after: '99999999999999999999d' is too long: at most 366d; a number and "
            "a unit s, m, h, d or w up to 366d, e.g. 1h or 3d",
            id="huge-give-up",
        ),
        pytest.param(
            "  alerts_to:",
            "  schedule_timeout: 2d\n  alerts_to:",
            ":10:21: delivery.schedule_timeout: '2d' is too long: at most 1d; a number and a unit s, m, h, d "
            "or w up to 1d, e.g. 1h or 3d",
            id="long-schedule-timeout",
        ),
    ],
)
def test_a_text_that_reads_differently_is_a_located_error(tmp_path, old, new, expected):
    assert problems(tmp_path, old, new) == [expected]


def test_emoji_and_plain_encoded_names_are_fine(tmp_path):
    path = tiny(tmp_path, 2525, to=["boss@acme.test"], name="texts")
    path.write_text(
        path.read_text().replace(
            "    from: reporting@acme.test",
            '    subject: "Rapport 📈 — {{ period.label }}"\n'
            '    from: "=?utf-8?q?R=C3=A9mi_Reports?= <reporting@acme.test>"',
        )
    )
    assert load_config(path, env={}).delivery.email.from_.startswith("=?utf-8?q?R=C3=A9mi")
