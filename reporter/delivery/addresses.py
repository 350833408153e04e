"""A report's plain recipient addresses, without importing the mailer (``reporter run`` counts
them for its progress before it computes; the mailer, SMTP and TLS are imported to send)."""

from __future__ import annotations

import email.utils
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reporter.config.model import Config


def recipients_of(config: Config) -> list[str]:
    """The plain addresses of ``to`` and ``cc``, each once, in order."""
    assert config.delivery.email is not None
    seen: dict[str, None] = {}
    for text in [*config.delivery.email.to, *config.delivery.email.cc]:
        seen.setdefault(email.utils.parseaddr(text)[1].lower(), None)
    return list(seen)
