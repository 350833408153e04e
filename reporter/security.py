"""What keeps the configuration's author inside their lane: secret redaction and file checks.

- ``redact(text)``: every value of an environment variable the configuration references (through
  ``${NAME}`` or a ``*_env`` key), and any URL's password or ``password=``/``pw=``/``token=``/
  ``key=`` query value, becomes ``***``. Errors (``ReporterError``), the CLI's output and its
  logs, results.json and provenance (source locations) go through it.
- ``check_named_file``: a file the YAML names (a source, the logo, ``ca_file``) must be a regular
  file, not a folder, a device or a file of ``/proc``/``/sys``/``/dev``.
- ``image_kind``: the logo is an image by its first bytes, not by its name.
- ``check_ca_file``: a CA bundle that ``ssl`` accepts.
- ``check_excel``: a workbook's uncompressed size (from the zip directory, before reading it) and
  formulas that have no cached value (nothing would compute them: they would read as empty).

No message here quotes a file's contents.
"""

from __future__ import annotations

import logging
import re
import threading
import zipfile
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

MASK = "***"
_MIN_SECRET = 4  # shorter values ("1", "on") would mask ordinary words; see docs/security.md
_SECRET_KEYS = frozenset({"password", "passwd", "pw", "pwd", "token", "key", "secret", "api_key", "apikey"})
# ``${NAME}`` and the placeholder ``PASSWORD`` (in hints: smtp://USER:PASSWORD@HOST) are no secret.
_URL_PASSWORD = re.compile(
    r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^/@:\s]*:)(?P<pw>(?!\$\{|PASSWORD@)[^/@\s]+)(?=@)"
)
_QUERY_SECRET = re.compile(
    r"(?P<head>[?&;](?:" + "|".join(sorted(_SECRET_KEYS)) + r")=)(?P<value>[^&#\s'\";,)]+)", re.IGNORECASE
)

_secrets: set[str] = set()
_lock = threading.Lock()

# Largest workbook (uncompressed, as its zip directory says) a source may be.
MAX_EXCEL_BYTES = 256 * 1024 * 1024
SPECIAL_ROOTS = (Path("/proc"), Path("/sys"), Path("/dev"))


def remember_secret(value: str | None) -> None:
    """Mask ``value`` wherever ``redact`` runs, from now on in this process."""
    if value and len(value) >= _MIN_SECRET:
        with _lock:
            _secrets.add(value)


def remember_url(url: str | None) -> None:
    """Mask a URL's password and its secret query values (``?pw=...``)."""
    if not url:
        return
    try:
        parts = urlsplit(url)
        remember_secret(parts.password)
        for key, value in parse_qsl(parts.query, keep_blank_values=False):
            if key.lower() in _SECRET_KEYS:
                remember_secret(value)
    except ValueError:
        pass
    for match in _URL_PASSWORD.finditer(url):
        remember_secret(match.group("pw"))


def known_secrets() -> list[str]:
    """What this process masks (handed to a child it forked before it learnt them)."""
    with _lock:
        return sorted(_secrets)


def forget_secrets() -> None:
    """For tests: start from no remembered secret."""
    with _lock:
        _secrets.clear()


def redact(text: str) -> str:
    """``text`` with every remembered secret, URL password and secret query value masked."""
    if not text:
        return text
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    text = _URL_PASSWORD.sub(lambda m: m.group("head") + MASK, text)
    return _QUERY_SECRET.sub(lambda m: m.group("head") + MASK, text)


def redact_url(url: str) -> str:
    """A URL without its password and secret query values."""
    return redact(url)


# ----------------------------------------------------------------------------------------------
# files named by the YAML


def check_named_file(path: Path) -> str | None:
    """Why ``path`` cannot be used as a file named by the configuration, or None."""
    try:
        real = path.resolve()
    except (OSError, RuntimeError):
        return f"cannot resolve {path}"
    if any(real == root or real.is_relative_to(root) for root in SPECIAL_ROOTS):
        return f"{path} is a system file, not a regular file"
    if not real.exists():
        return f"file not found: {path}"
    if real.is_dir():
        return f"{path} is a folder, not a file"
    if not real.is_file():
        return f"{path} is not a regular file"
    return None


_IMAGES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def image_kind(path: Path) -> str | None:
    """The image's MIME type by its first bytes (PNG, JPEG, GIF, WebP, SVG), or None."""
    try:
        with path.open("rb") as handle:
            head = handle.read(512)
    except OSError:
        return None
    for magic, mime in _IMAGES:
        if head.startswith(magic):
            return mime
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in head.lower()):
        return "image/svg+xml"
    return None


def inside_any(path: Path, folders: Iterable[Path]) -> bool:
    real = path.resolve()
    return any(real.is_relative_to(folder.resolve()) for folder in folders)


def check_ca_file(path: Path) -> str | None:
    """Why ``path`` is not a usable CA bundle, or None."""
    import ssl

    reason = check_named_file(path)
    if reason:
        return reason
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    try:
        context.load_verify_locations(cafile=str(path))
    except (ssl.SSLError, ValueError, OSError):
        return f"{path} holds no PEM certificate that ssl can read"
    return None


def check_excel(path: Path, limit: int | None = None) -> str | None:
    """Why the workbook cannot be read safely, or None: too large once uncompressed (read from
    the zip directory, before any decompression), not a workbook, or formulas without a cached
    value."""
    limit = MAX_EXCEL_BYTES if limit is None else limit
    try:
        with zipfile.ZipFile(path) as archive:
            total = sum(info.file_size for info in archive.infolist())
            if total > limit:
                return (
                    f"{path.name} expands to {total // (1024 * 1024)} MiB, more than the "
                    f"{limit // (1024 * 1024)} MiB a workbook may"
                )
            sheets = [n for n in archive.namelist() if re.match(r"xl/worksheets/[^/]+\.xml$", n)]
            for name in sheets:
                if _uncached_formula(archive.read(name)):
                    return (
                        f"{path.name}: a formula has no saved value ({name.rsplit('/', 1)[-1][:-4]}); "
                        "open the workbook in Excel or LibreOffice and save it, so its values are stored"
                    )
    except zipfile.BadZipFile:
        return f"{path.name} is not an .xlsx workbook"
    except OSError as exc:
        return f"cannot read {path.name}: {exc.strerror or type(exc).__name__}"
    return None


_CELL = re.compile(rb"<(?:\w+:)?c\b[^>]*?(?:/>|>(.*?)</(?:\w+:)?c>)", re.DOTALL)


def _uncached_formula(xml: bytes) -> bool:
    for match in _CELL.finditer(xml):
        body = match.group(1) or b""
        if re.search(rb"<(?:\w+:)?f\b", body) and not re.search(rb"<(?:\w+:)?v>[^<]", body):
            return True
    return False


class RedactingFilter(logging.Filter):
    """A log filter that masks every secret (``redact``) in a record's message before any
    handler writes it: the CLI's and each scheduler worker's standard error."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True
