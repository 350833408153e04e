"""The auditor's archive: PDF/A-3a (and PDF/UA-1) with its evidence inside, and a tamper-evident manifest.

Layout under ``delivery.archive.dir``::

    <report>/<period>/<report>_<period>_v<N>.pdf    never overwritten, never deleted
    manifest.jsonl                                  one line per archived file, hash-chained

Each manifest line holds the file's path (relative to the archive), SHA-256, size, run id,
time, reason, the SHA-256 of each attachment inside the PDF, and ``prev``: the SHA-256 of the
previous line's text (64 zeros for the first), and with REPORTER_ARCHIVE_KEY set an HMAC of the
line. Editing, deleting or reordering lines breaks the chain; editing or deleting a file breaks
its hash. A rewrite that recomputes the chain is caught by the ledger, which recorded each
line's SHA-256 when it was written, and by the HMAC. The ledger knows an archive by its content
(the SHA-256 of its first line, see ``chain_key``), never by its folder: a copy of the archive
with its ledger, or a restore elsewhere, verifies the same. The manifest is rewritten atomically (temp
file, fsync, rename), so a crash leaves the old or the new manifest, never a torn line; the
PDF is first written as a hidden partial file and renamed into place after the manifest (see
``Chain.append``, the one way any line joins the chain, a purge line too), so an interrupted
archiving still verifies.

An archive, or a PDF, may come from elsewhere: reading one is bounded (see docs/security.md).
``verify`` and ``audit`` read the manifest through one function, ``read_manifest``: line by line,
each line at most ``MAX_MANIFEST_LINE`` bytes, at most ``MAX_MANIFEST_LINES`` lines and
``MAX_MANIFEST_BYTES`` in all, a manifest past any of them refused whole (exit 2, one line); a
PDF at most ``MAX_PDF`` bytes;
an attachment is decompressed piece by piece, at most the size it declares and at most
``MAX_ATTACHMENT`` bytes. Anything in the archive folder that is not a regular file (a FIFO, a
device, a socket, a symlink) is named and never opened.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import io
import json
import mimetypes
import os
import re
import stat
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from reporter.errors import UsageError
from reporter.files import fsync_dir, write_atomic, write_together

if TYPE_CHECKING:
    from reporter.delivery.ledger import Ledger


MANIFEST = "manifest.jsonl"
GENESIS = "0" * 64

MiB = 1024 * 1024
MAX_MANIFEST_LINE = 64 * 1024  # bytes; a line reporter writes is about 1 KiB
MAX_MANIFEST_LINES = 1_000_000  # archived files
MAX_MANIFEST_BYTES = 1024 * MiB  # 1 GiB: about a million lines
MAX_PDF = 256 * MiB  # an archived PDF that verify or reproduce reads
MAX_ATTACHMENT = 256 * MiB  # one attachment of a PDF, once decompressed
_PIECE = 1 * MiB  # what is read or decompressed at once


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_pdfa(
    document: Any, attachments: dict[str, tuple[bytes, str]], identifier: str, now: dt.datetime
) -> bytes:
    """Write a rendered WeasyPrint document as tagged PDF/A-3a and PDF/UA-1 with associated files.

    ``attachments`` maps a file name to (content, AFRelationship); MIME types come from the
    names. WeasyPrint writes one variant: PDF/A-3a (tagged: structure tree, /Lang from
    ``<html lang>``, /MarkInfo, /DisplayDocTitle); the XMP metadata also gets PDF/UA-1's
    identification (``pdfuaid:part``), declared in a PDF/A extension schema as PDF/A asks of a
    property outside its own schemas. WeasyPrint compresses the XMP metadata stream for PDF/A-2
    and -3, which PDF/A-3 forbids (METADATA-FILTER-001): this document's metadata is written
    uncompressed, every other stream stays compressed. Dates come from ``now``, so a re-render
    is byte-identical."""
    from weasyprint import Attachment

    # WeasyPrint names each attachment's MIME type from its file name: the YAML's too. (Here, not
    # at import: the first add_type reads the system's MIME tables, which a run pays only when
    # WeasyPrint loads them anyway.)
    mimetypes.add_type("application/yaml", ".yaml")
    mimetypes.add_type("application/yaml", ".yml")
    when = now.astimezone(dt.UTC)
    stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    metadata = document.metadata
    metadata.created = stamp
    metadata.modified = stamp
    include = metadata.include_in_pdf
    rdf = metadata.generate_rdf_metadata

    def include_uncompressed(pdf: Any, variant: str, version: str, conformance: str, compress: bool) -> None:
        include(pdf, variant, version, conformance, False)

    def with_pdfua(variant: str, version: int, conformance: str) -> bytes:
        return _with_pdfua_identification(rdf(variant, version, conformance))

    metadata.include_in_pdf = include_uncompressed
    metadata.generate_rdf_metadata = with_pdfua
    files = [
        Attachment(
            file_obj=io.BytesIO(content),
            name=name,
            description=name,
            created=when,
            modified=when,
            relationship=relationship,
        )
        for name, (content, relationship) in attachments.items()
    ]
    pdf: bytes = document.write_pdf(
        pdf_variant="pdf/a-3a", attachments=files, pdf_identifier=identifier.encode()[:32]
    )
    return no_cr_before_endstream(pdf)


# PDF/UA-1's identification (ISO 14289-1, 5) and the PDF/A extension schema that declares it.
_PDFUA_ID = (
    b'<rdf:Description xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" rdf:about="" '
    b'xmlns:pdfuaid="http://www.aiim.org/pdfua/ns/id/" pdfuaid:part="1"/>'
    b'<rdf:Description xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" rdf:about="" '
    b'xmlns:pdfaExtension="http://www.aiim.org/pdfa/ns/extension/" '
    b'xmlns:pdfaSchema="http://www.aiim.org/pdfa/ns/schema#" '
    b'xmlns:pdfaProperty="http://www.aiim.org/pdfa/ns/property#">'
    b'<pdfaExtension:schemas><rdf:Bag><rdf:li rdf:parseType="Resource">'
    b"<pdfaSchema:schema>PDF/UA Universal Accessibility Schema</pdfaSchema:schema>"
    b"<pdfaSchema:namespaceURI>http://www.aiim.org/pdfua/ns/id/</pdfaSchema:namespaceURI>"
    b"<pdfaSchema:prefix>pdfuaid</pdfaSchema:prefix>"
    b'<pdfaSchema:property><rdf:Seq><rdf:li rdf:parseType="Resource">'
    b"<pdfaProperty:name>part</pdfaProperty:name>"
    b"<pdfaProperty:valueType>Integer</pdfaProperty:valueType>"
    b"<pdfaProperty:category>internal</pdfaProperty:category>"
    b"<pdfaProperty:description>Indicates, which part of ISO 14289 standard is followed"
    b"</pdfaProperty:description>"
    b"</rdf:li></rdf:Seq></pdfaSchema:property>"
    b"</rdf:li></rdf:Bag></pdfaExtension:schemas></rdf:Description>"
)


def _with_pdfua_identification(rdf: bytes) -> bytes:
    """WeasyPrint's RDF (one ``rdf:RDF`` element) with PDF/UA-1's identification added."""
    end = rdf.rindex(b"</rdf:RDF>")
    return rdf[:end] + _PDFUA_ID + rdf[end:]


def no_cr_before_endstream(pdf: bytes) -> bytes:
    """Make sure no stream's data ends with a carriage return.

    pydyf writes ``<data>\nendstream``; when compressed data ends with ``\r`` (the last byte of
    a zlib stream is its Adler-32 checksum, so about one stream in 256, one render in eight
    here), a PDF/A validator reads ``\r\n`` as the end-of-line marker and finds the stream one
    byte shorter than its /Length (PDFA3B-STREAM-LENGTH-001). Such a stream gets an
    ASCIIHexDecode layer in front of its FlateDecode (allowed in PDF/A), whose data ends with
    ``>``; every other stream is left as it is."""
    if b"\r\nendstream" not in pdf:
        return pdf
    import binascii

    import pikepdf

    with pikepdf.open(io.BytesIO(pdf)) as doc:
        for obj in doc.objects:
            if obj._type_code != pikepdf.ObjectType.stream or obj.get("/Filter") != pikepdf.Name.FlateDecode:
                continue
            raw = obj.read_raw_bytes()
            if not raw.endswith(b"\r"):
                continue
            params = obj.get("/DecodeParms")
            obj.write(
                binascii.hexlify(raw) + b">",
                filter=pikepdf.Array([pikepdf.Name.ASCIIHexDecode, pikepdf.Name.FlateDecode]),
                decode_parms=pikepdf.Array([None, params]) if params is not None else None,
            )
        out = io.BytesIO()
        doc.save(
            out,
            deterministic_id=True,
            compress_streams=False,
            stream_decode_level=pikepdf.StreamDecodeLevel.none,
        )
    return out.getvalue()


class AttachmentError(ValueError):
    """An attachment that is not read: larger than it declares or than the bound, or encoded
    in a way reporter does not write."""


def attachments_of(
    pdf: bytes, *, only: Collection[str] | None = None, limit: int = MAX_ATTACHMENT
) -> dict[str, bytes]:
    """The embedded files of a PDF, by name (``only``: just these). Each is checked against the
    size it declares, and each and all together against ``limit``, before and while it is
    decompressed: AttachmentError."""
    return {name: b"".join(pieces) for name, pieces in _each_attachment(pdf, only, limit)}


def attachment_digests(pdf: bytes, *, limit: int = MAX_ATTACHMENT) -> dict[str, str]:
    """The SHA-256 of each embedded file, by name, decompressed piece by piece (never whole)."""
    found = {}
    for name, pieces in _each_attachment(pdf, None, limit):
        digest = hashlib.sha256()
        for piece in pieces:
            digest.update(piece)
        found[name] = digest.hexdigest()
    return dict(sorted(found.items()))


def _each_attachment(
    pdf: bytes, only: Collection[str] | None, limit: int
) -> Iterator[tuple[str, Iterator[bytes]]]:
    """Each embedded file's name and its content in pieces (to be consumed before the next)."""
    import pikepdf

    read = [0]  # decompressed so far, all attachments together
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        for name, spec in doc.attachments.items():
            if only is not None and name not in only:
                continue
            stream = spec.get_file().obj
            declared = _declared_size(stream)
            if declared is not None and declared > limit:
                raise AttachmentError(
                    f"attachment '{name}' declares {declared:,} bytes, more than the {limit:,} reporter reads"
                )
            yield name, _pieces(name, stream, declared, limit, read)


def _declared_size(stream: Any) -> int | None:
    """The size an embedded file declares (/Params /Size), if it declares one."""
    params = stream.get("/Params")
    size = params.get("/Size") if params is not None and hasattr(params, "get") else None
    try:
        return int(size) if size is not None else None
    except (TypeError, ValueError):
        return None


def _pieces(name: str, stream: Any, declared: int | None, limit: int, read: list[int]) -> Iterator[bytes]:
    """The decoded content of an embedded file, piece by piece, stopped past ``limit`` or past
    the size it declares, or when ``read[0]`` (all attachments so far) goes past ``limit``.
    Only what reporter writes is decoded: no filter, or /FlateDecode."""
    import pikepdf

    filters = stream.get("/Filter")
    names = (
        [str(f) for f in filters] if isinstance(filters, pikepdf.Array) else [str(filters)] if filters else []
    )
    parms = stream.get("/DecodeParms")
    if isinstance(parms, pikepdf.Array) and all(p is None for p in parms):
        parms = None  # [null null]: no parameters
    if names not in ([], ["/FlateDecode"], ["/ASCIIHexDecode", "/FlateDecode"]) or parms is not None:
        shown = " ".join(names) + (" with /DecodeParms" if parms is not None else "")
        raise AttachmentError(f"attachment '{name}' is encoded with {shown}, which reporter does not read")
    raw = stream.read_raw_bytes()
    if names[:1] == ["/ASCIIHexDecode"]:  # no_cr_before_endstream's layer (one stream in 256)
        raw = _unhex(name, raw)
        names = names[1:]
    total = 0
    for piece in _inflate(name, raw) if names else (raw[i : i + _PIECE] for i in range(0, len(raw), _PIECE)):
        total += len(piece)
        read[0] += len(piece)
        if total > limit:
            raise AttachmentError(
                f"attachment '{name}' holds more than {limit:,} bytes once decompressed: not read"
            )
        if read[0] > limit:
            raise AttachmentError(
                f"the attachments hold more than {limit:,} bytes in all once decompressed: '{name}' not read"
            )
        if declared is not None and total > declared:
            raise AttachmentError(f"attachment '{name}' holds more than the {declared:,} bytes it declares")
        yield piece
    if declared is not None and total != declared:
        raise AttachmentError(f"attachment '{name}' holds {total:,} bytes, not the {declared:,} it declares")


def _unhex(name: str, data: bytes) -> bytes:
    """ASCIIHexDecode: hex digits up to ``>``, white space ignored, an odd last digit followed
    by 0 (ISO 32000-1, 7.4.2). The hex data is at most twice the PDF's own bounded size."""
    import binascii

    digits = bytes(data.split(b">", 1)[0].translate(None, b" \t\r\n\f\x00"))
    if len(digits) % 2:
        digits += b"0"
    try:
        return binascii.unhexlify(digits)
    except (binascii.Error, ValueError):
        raise AttachmentError(f"attachment '{name}' is not valid ASCIIHex data") from None


def _inflate(name: str, raw: bytes) -> Iterator[bytes]:
    """``raw`` (zlib) decompressed at most ``_PIECE`` bytes at a time."""
    import zlib

    inflater = zlib.decompressobj()
    data = raw
    try:
        while True:
            piece = inflater.decompress(data, _PIECE)
            if piece:
                yield piece
            data = inflater.unconsumed_tail
            if inflater.eof or (not data and not piece):
                return
    except zlib.error as exc:
        raise AttachmentError(f"attachment '{name}' cannot be decompressed ({exc})") from None


@dataclass
class Archived:
    path: Path
    version: int
    line: dict[str, Any]
    new: bool = True  # False: the same PDF was already archived (``reuse``)


class ArchiveError(Exception):
    """The archive cannot take a new line (e.g. its manifest is shorter than the ledger's record)."""


class Files:
    """The file operations of archiving, in one object: a test can make one of them fail
    (a read-only folder, a full disk) without patching ``os`` for the whole process."""

    def write(self, path: Path, data: bytes) -> None:
        """An output file (results.json, the PDF): replaced atomically."""
        write_atomic(path, data)

    def write_together(self, contents: Mapping[Path, bytes], remove: Iterable[Path] = ()) -> None:
        """A run's output files (results.json, the PDF, the e-mail…), put in place together
        once every one is written; ``remove``: those of an earlier run this one does not make."""
        write_together(contents, remove)

    def mkdir(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)

    def create_new(self, path: Path, data: bytes) -> None:
        """Create ``path`` (never overwrite), durably, read-only."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())

    def replace(self, path: Path, data: bytes) -> None:
        """Replace ``path`` atomically (temp file, fsync, rename, fsync of the folder)."""
        write_atomic(path, data)

    def rename(self, src: Path, dst: Path) -> None:
        os.rename(src, dst)
        fsync_dir(dst.parent)

    def remove(self, path: Path) -> None:
        """Delete an archived file (read-only, as archiving left it): a purge's last step."""
        os.chmod(path, 0o644)
        path.unlink()


def read_lines(archive: Path) -> list[str]:
    """The manifest's lines (none when it does not exist yet)."""
    manifest = archive / MANIFEST
    if not manifest.is_file():
        return []
    return [line for line in manifest.read_text(encoding="utf-8").splitlines() if line.strip()]


def line_hmac(key: str, entry: dict[str, Any]) -> str:
    """HMAC-SHA256 of a manifest entry (every field but ``hmac``), keyed by REPORTER_ARCHIVE_KEY."""
    body = {k: v for k, v in entry.items() if k != "hmac"}
    text = json.dumps(body, ensure_ascii=False, sort_keys=True).encode("utf-8")
    return hmac.new(key.encode("utf-8"), text, hashlib.sha256).hexdigest()


@contextlib.contextmanager
def _locked(archive: Path) -> Iterator[None]:
    """One writer at a time per archive (the manifest is read, extended and replaced)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    lock = archive / ".lock"
    try:
        fd = _open_checked(lock, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    except OSError as exc:  # a FIFO there would block the run forever
        odd = _not_regular(lock)
        reason = f"{odd}, not a regular file" if odd else (exc.strerror or str(exc))
        raise ArchiveError(
            f"{lock}: cannot lock the archive ({reason}): remove it, reporter makes a new one"
        ) from None
    with os.fdopen(fd, "ab") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class ForeignArchive(ArchiveError):
    """The archive holds a hash chain the ledger did not record: it belongs to another ledger."""


def chain_key(ledger: Ledger, lines: list[str]) -> str | None:
    """How ``ledger`` knows the archive whose manifest holds ``lines``: by its content (the
    SHA-256 of its first line), never by its folder, so that a copy or a restore elsewhere is
    the same archive. None for an empty manifest (its first line will be its key) and
    ForeignArchive when the ledger never recorded its first line."""
    if not lines:
        return None
    first = sha256(lines[0].encode())
    key = ledger.chain_of(first)
    if key is None:
        raise ForeignArchive(
            f"the ledger has no record of this archive's hash chain (its first line, SHA-256 "
            f"{first[:16]}…): it was written with another ledger"
        )
    return key


@dataclass
class Chain:
    """An archive's manifest, locked, as ``open_chain`` read it: the one way a line joins the
    hash chain, whether it archives a file (a PDF, an e-mail) or not (a purge line)."""

    archive: Path
    lines: list[str]  # the manifest's lines; ``append`` adds the new ones
    ident: str | None  # how the ledger knows this chain (``chain_key``); None until its first line
    ledger: Ledger | None
    key: str | None  # REPORTER_ARCHIVE_KEY: each line gets its HMAC
    files: Files

    def append(self, *new: tuple[dict[str, Any], bytes | None]) -> None:
        """Append each ``(entry, data)`` to the manifest, chained and HMAC'd, in one commit.

        ``data``: the bytes of the file the line archives, put at ``entry["path"]``; None for a
        line without a file of its own (a purge line). Order, which keeps a crash at any step
        verifiable: each file is written as a hidden ``.<name>.partial`` file, each line is
        recorded in the ledger (intent), the manifest is replaced atomically once (the commit
        point), the ledger's records are confirmed, then the partial files are renamed into
        place. A crash before the commit leaves the old manifest, hidden partial files (ignored
        by verify, removed by the next append) and intents the next append discards; a crash
        after it leaves partial files the next append renames into place and intents it
        confirms (``_recover``, ``_reconcile``)."""
        refused = key_refusal(self.archive, self.lines, self.key)
        if refused:
            raise ArchiveError(refused)
        partials: list[tuple[Path, Path]] = []
        for entry, data in new:
            if data is not None:
                path = self.archive / entry["path"]
                partial = path.with_name(f".{path.name}.partial")
                self.files.create_new(partial, data)
                partials.append((partial, path))
        written = list(self.lines)
        numbers = []
        for entry, _data in new:
            entry["prev"] = sha256(written[-1].encode()) if written else GENESIS
            if self.key:
                entry["hmac"] = line_hmac(self.key, entry)
            line = json.dumps(entry, ensure_ascii=False, sort_keys=True)
            number = len(written) + 1
            self.ident = self.ident or sha256(line.encode())  # a new archive: known by its first line
            if self.ledger is not None and not self.ledger.line_intent(
                self.ident, number, sha256(line.encode()), entry
            ):
                for partial, _path in partials:
                    partial.chmod(0o644)
                    partial.unlink()
                raise ArchiveError(
                    f"{self.archive / MANIFEST}: the ledger has already recorded line {number}, but the "
                    f"manifest has {len(self.lines)} line(s): it was truncated or replaced; run "
                    f"'reporter verify {self.archive}'"
                )
            written.append(line)
            numbers.append(number)
        self.files.replace(self.archive / MANIFEST, "".join(x + "\n" for x in written).encode("utf-8"))
        if self.ledger is not None and self.ident is not None:
            for number in numbers:
                self.ledger.line_state(self.ident, number, "written")
        for partial, path in partials:
            self.files.rename(partial, path)
        self.lines[:] = written


def key_refusal(archive: Path, lines: list[str], key: str | None) -> str | None:
    """Why a line with ``key`` (REPORTER_ARCHIVE_KEY, or None) may not join the chain of
    ``lines``, else None: once the last line carries an HMAC, every new line must carry one with
    the same key, or it would fail ``reporter verify`` for good (the manifest is append-only)."""
    if not lines:
        return None
    try:
        last = json.loads(lines[-1])
    except ValueError:
        return None  # verify names that line
    if not isinstance(last, dict) or "hmac" not in last:
        return None
    manifest = archive / MANIFEST
    fix = "set REPORTER_ARCHIVE_KEY to the key the archive was written with"
    if not key:
        return (
            f"{manifest}: its lines carry an HMAC but REPORTER_ARCHIVE_KEY is not set, and a line "
            f"without one would fail 'reporter verify' for good; {fix}"
        )
    if not hmac.compare_digest(str(last["hmac"]), line_hmac(key, last)):
        return (
            f"{manifest}: REPORTER_ARCHIVE_KEY is not the key its lines were written with (line "
            f"{len(lines)}'s HMAC differs), and a line with it would fail 'reporter verify' for good; {fix}"
        )
    return None


@contextlib.contextmanager
def open_chain(
    archive: Path, *, ledger: Ledger | None = None, key: str | None = None, files: Files | None = None
) -> Iterator[Chain]:
    """The archive locked for appending, with what an interrupted append left finished or
    discarded (``_recover``, ``_reconcile``), and its manifest read. ForeignArchive when the
    ledger never recorded this chain."""
    files = files or Files()
    with _locked(archive):
        _recover(archive, files)
        lines = read_lines(archive)
        ident = chain_key(ledger, lines) if ledger is not None else None
        if ledger is not None and ident is not None:
            _reconcile(ledger, ident, lines)
        yield Chain(archive, lines, ident, ledger, key, files)


def pdf_versions(folder: Path, report: str, period: str) -> dict[int, Path]:
    """The report's PDFs of ``period`` in its archive folder (``<report>_<period>_v<N>.pdf``),
    by version."""
    found = {}
    for path in folder.glob(f"{report}_{period}_v*.pdf"):
        match = re.search(r"_v(\d+)\.pdf$", path.name)
        if match:
            found[int(match.group(1))] = path
    return found


def archive_pdf(
    archive: Path,
    report: str,
    period: str,
    pdf: bytes,
    *,
    run_id: str,
    now: dt.datetime,
    reason: str | None = None,
    ledger: Ledger | None = None,
    key: str | None = None,
    reuse: bool = False,
    files: Files | None = None,
) -> Archived:
    """Append ``pdf`` to the archive as the next version; return where it went.

    The order that keeps a crash verifiable is ``Chain.append``'s: hidden partial file, the
    ledger's intent, the manifest (the commit point), the ledger's confirmation, the rename.
    ``key`` (REPORTER_ARCHIVE_KEY) adds an HMAC to the line. ``reuse``: when this very PDF is
    already archived for (report, period), return that version instead."""
    files = files or Files()
    files.mkdir(archive)
    with open_chain(archive, ledger=ledger, key=key, files=files) as chain:
        lines = chain.lines
        digest = sha256(pdf)
        if reuse:
            for text in lines:
                with contextlib.suppress(ValueError, AttributeError):
                    old = json.loads(text)
                    if (old.get("report"), old.get("period"), old.get("sha256")) == (report, period, digest):
                        return Archived(archive / old["path"], int(old["version"]), old, new=False)
        folder = archive / report / period
        files.mkdir(folder)
        taken = list(pdf_versions(folder, report, period))
        for text in lines:  # and the versions the manifest lists (a file purged is not there)
            with contextlib.suppress(ValueError, AttributeError, TypeError, KeyError):
                old = json.loads(text)
                if (old.get("report"), old.get("period")) == (report, period):
                    taken.append(int(old["version"]))
        version = max(taken, default=0) + 1
        path = folder / f"{report}_{period}_v{version}.pdf"
        entry: dict[str, Any] = {
            "path": str(path.relative_to(archive)),
            "sha256": digest,
            "size": len(pdf),
            "report": report,
            "period": period,
            "version": version,
            "run_id": run_id,
            "time": now.isoformat(timespec="seconds"),
            "reason": reason,
            "attachments": attachment_digests(pdf),
        }
        chain.append((entry, pdf))
    return Archived(path, version, entry)


MESSAGES = "messages"  # <report>/<period>/messages/: the e-mails as the server received them


@dataclass
class Message:
    """A delivered e-mail: its bytes as the server received them, to whom, its Message-ID(s)
    and the delivery's version."""

    data: bytes
    recipients: list[str]
    message_ids: list[str]
    version: int


def archive_messages(
    archive: Path,
    report: str,
    period: str,
    messages: list[Message],
    *,
    run_id: str,
    now: dt.datetime,
    reason: str | None = None,
    ledger: Ledger | None = None,
    key: str | None = None,
    files: Files | None = None,
) -> list[Archived]:
    """Append each distinct message (by content: one file and one manifest line per distinct
    bytes, listing every recipient that received those bytes) to the archive's hash chain, as
    ``<report>/<period>/messages/<report>_<period>_v<N>_<recipient>.eml``; a message already
    archived with the same bytes is not archived again. Never overwrites a file."""
    from reporter.files import recipient_name

    files = files or Files()
    distinct: dict[str, Message] = {}
    for message in messages:
        same = distinct.setdefault(sha256(message.data), Message(message.data, [], [], message.version))
        same.recipients += [r for r in message.recipients if r not in same.recipients]
        same.message_ids += [m for m in message.message_ids if m not in same.message_ids]
    done: list[Archived] = []
    if not distinct:
        return done
    files.mkdir(archive)
    with open_chain(archive, ledger=ledger, key=key, files=files) as chain:
        kept = set()
        for text in chain.lines:
            with contextlib.suppress(ValueError, AttributeError):
                kept.add(json.loads(text).get("sha256"))
        folder = archive / report / period / MESSAGES
        for digest, message in distinct.items():
            if digest in kept:
                continue
            files.mkdir(folder)
            stem = f"{report}_{period}_v{message.version}_{recipient_name(message.recipients[0])}"
            path, count = folder / f"{stem}.eml", 1
            while path.exists() or path.with_name(f".{path.name}.partial").exists():
                count += 1
                path = folder / f"{stem}_{count}.eml"
            entry: dict[str, Any] = {
                "kind": "message",
                "path": str(path.relative_to(archive)),
                "sha256": digest,
                "size": len(message.data),
                "report": report,
                "period": period,
                "version": message.version,
                "recipients": message.recipients,
                "message_ids": message.message_ids,
                "run_id": run_id,
                "time": now.isoformat(timespec="seconds"),
                "reason": reason,
                "attachments": {},
            }
            chain.append((entry, message.data))
            done.append(Archived(path, message.version, entry))
    return done


def _reconcile(ledger: Ledger, ident: str, lines: list[str]) -> None:
    """Settle the ledger's records of lines an interrupted append left as intents."""
    for number, record in sorted(ledger.manifest_records(ident).items()):
        if record["state"] != "intent":
            continue
        present = number <= len(lines) and sha256(lines[number - 1].encode()) == record["sha256"]
        ledger.line_state(ident, number, "written" if present else "aborted")


def _recover(archive: Path, files: Files | None = None) -> None:
    """Finish or discard what an interrupted archiving left behind."""
    files = files or Files()
    listed = {}
    for text in read_lines(archive):
        try:
            entry = json.loads(text)
            listed[str(entry.get("path"))] = entry.get("sha256")
        except (json.JSONDecodeError, AttributeError):
            continue
    for partial in archive.rglob(".*.partial"):
        odd = _not_regular(partial)
        if odd is not None:  # reading a FIFO would wait forever; chmod would follow a link
            if odd != "a folder":
                partial.unlink()
            continue
        final = partial.with_name(partial.name[1 : -len(".partial")])
        rel = str(final.relative_to(archive))
        if rel in listed and not final.exists() and sha256(partial.read_bytes()) == listed[rel]:
            files.rename(partial, final)
        else:
            partial.chmod(0o644)
            partial.unlink()


_FIELDS: dict[str, type | tuple[type, ...]] = {
    "path": str,
    "sha256": str,
    "size": int,
    "report": str,
    "period": str,
    "version": int,
    "prev": str,
    "attachments": dict,
}
_KINDS = {list: "a JSON array", int: "a number", float: "a number", str: "a string", bool: "a boolean"}


def verify_archive(
    archive: Path,
    *,
    report: str | None = None,
    period: str | None = None,
    ledger: Ledger | None = None,
    key: str | None = None,
) -> list[str]:
    """Every problem found, each naming its path or manifest line; an empty list means the
    archive is intact. With ``ledger``: every line must be the one recorded when it was written,
    and every recorded line must be there. With ``key``: every line must carry its HMAC. The
    manifest is read by ``read_manifest``: past its bounds, ManifestTooLarge (exit 2) before any
    file is checked. What is not a regular file is never opened."""
    manifest = archive / MANIFEST
    first = _first_line(archive)
    records = _chain_records(archive, ledger, first, report)
    written = {n: r for n, r in records.items() if r["state"] == "written"}
    refused = _manifest_refused(manifest)
    if refused:
        if written:
            refused += f" (the ledger recorded {len(written)} line(s))"
        return [refused]
    problems: list[str] = []
    listed: dict[str, int] = {}
    hashes: dict[str, str] = {}  # each listed path's SHA-256, for the purge lines
    purged = _purged_in(archive)  # files removed under retention; refuses a manifest past its bounds
    versions: dict[tuple[str, str, int], int] = {}
    prev = GENESIS
    root = archive.resolve()
    number = 0
    stopped = False
    try:
        for number, blob, digest in read_manifest(archive):
            where = f"{MANIFEST}:{number}"
            problems += _ledger_problems(where, digest, records.get(number), records)
            entry, problem = _parse_line(where, blob)
            prev, previous = digest, prev
            if entry is None:
                problems.append(problem)
                continue
            problems += _link_problems(where, entry, previous, key)
            if entry.get("purged") is not None:  # a purge line: what it names must be listed
                problems += _purge_problems(where, entry, listed, hashes)
                continue
            duplicate = _duplicate(where, number, entry, listed, versions)
            if duplicate:
                problems.append(duplicate)
                continue
            hashes[entry["path"]] = entry["sha256"]
            if (report and entry["report"] != report) or (period and entry["period"] != period):
                continue
            if entry["path"] in purged and not os.path.lexists(archive / entry["path"]):
                continue  # removed under retention; its purge line keeps its SHA-256
            problems += _file_problems(archive, root, number, entry)
    except OSError as exc:  # replaced meanwhile by something that is not a regular file
        problems.append(f"{MANIFEST}: cannot be read ({exc.strerror or exc})")
        stopped = True
    head, tail = _ledger_counts(first, ledger is not None, records, number, stopped)
    problems = head + problems + tail
    problems += _extra_files(archive, listed, report, period)
    return problems


def _chain_records(
    archive: Path, ledger: Ledger | None, first: str | None, report: str | None
) -> dict[int, dict[str, Any]]:
    """The ledger's records of the archive's chain (``ledger_chain``); none without a ledger."""
    if ledger is None:
        return {}
    chain = ledger_chain(archive, ledger, first, report)
    return ledger.manifest_records(chain) if chain is not None else {}


def ledger_chain(archive: Path, ledger: Ledger, first: str | None, report: str | None = None) -> str | None:
    """How ``ledger`` knows the archive whose manifest's first line has the SHA-256 ``first``:
    by that line, else (line 1 changed, or the manifest gone) by the chain that holds its
    reports (``report``, or the archive's report folders); None when it knows neither. What
    ``verify`` checks the lines against, and what ``audit`` takes as the archive's own ledger."""
    chain = ledger.chain_of(first) if first else None
    if chain is None:
        chain = ledger.chain_of_reports([report] if report else _reports_in(archive))
    return chain


def first_line(archive: Path) -> str | None:
    """The SHA-256 of the archive's first manifest line (its identity in a ledger), if it has one."""
    return _first_line(archive)


def _purged_in(archive: Path) -> set[str]:
    """The paths the manifest's purge lines name (a first pass, which refuses a manifest past its
    bounds before any file is checked; the lines' own problems are found by the second)."""
    found: set[str] = set()
    try:
        for _number, blob, _digest in read_manifest(archive):
            entry, _problem = _parse_line("", blob)
            if entry is not None and entry.get("purged") is not None:
                found.add(entry["path"])
    except OSError:
        pass  # the second pass says so
    return found


def _purge_problems(
    where: str, entry: dict[str, Any], listed: dict[str, int], hashes: dict[str, str]
) -> list[str]:
    """A purge line must name an earlier line archiving that very file (path and SHA-256)."""
    rel, line = entry["path"], entry["purged"]
    if isinstance(line, bool) or listed.get(rel) != line or hashes.get(rel) != entry["sha256"]:
        return [
            f"{where}: marks {rel} purged, but no earlier line archived it with that SHA-256 (line {line})"
        ]
    return []


def _first_line(archive: Path) -> str | None:
    """The SHA-256 of the manifest's first line (the archive's identity in a ledger), if it has one
    (none when it is past its bounds: ``verify_archive`` refuses it)."""
    if _manifest_refused(archive / MANIFEST):
        return None
    try:
        for _number, _blob, digest in read_manifest(archive):
            return digest
    except (OSError, ManifestTooLarge):
        return None
    return None


def _reports_in(archive: Path) -> list[str]:
    """The report folders of an archive (``<report>/<period>/…``)."""
    try:
        with os.scandir(archive) as found:
            return sorted(
                e.name for e in found if e.is_dir(follow_symlinks=False) and not e.name.startswith(".")
            )
    except OSError:
        return []


def _ledger_counts(
    first: str | None, with_ledger: bool, records: Mapping[int, Any], lines: int, stopped: bool
) -> tuple[list[str], list[str]]:
    """What the ledger says of the manifest as a whole (before the lines' problems), and of the
    lines it recorded that the manifest no longer has (after them)."""
    written = {n: r for n, r in records.items() if r["state"] == "written"}
    head = []
    if with_ledger and lines and not records:
        head.append(
            f"{MANIFEST}: the ledger has no record of this archive (its first line, SHA-256 "
            f"{(first or '')[:16]}…): wrong ledger, or the archive was written without it"
        )
    if not lines and written:
        head.append(f"{MANIFEST}: empty, but the ledger recorded {len(written)} line(s)")
    tail = [
        f"{MANIFEST}:{number}: missing: the ledger recorded {record['path']} on this line "
        "(the manifest was truncated)"
        for number, record in sorted(written.items())
        if number > lines and not stopped
    ]
    return head, tail


def _manifest_refused(manifest: Path) -> str | None:
    """Why the manifest is not read: missing, a symlink, not a regular file."""
    odd = _not_regular(manifest)
    if odd is None:
        return None if manifest.exists() else f"{MANIFEST}: missing"
    if odd == "a symlink":
        return f"{MANIFEST}: a symlink, refused"
    return f"{MANIFEST}: {odd}, not a regular file: not opened"


class ManifestTooLarge(UsageError):
    """The manifest goes past what ``read_manifest`` reads: refused whole (exit 2)."""


def read_manifest(archive: Path) -> Iterator[tuple[int, bytes, str]]:
    """The one way ``verify`` and ``audit`` read an archive's manifest (``reproduce`` too, for the
    line of a PDF): each non-blank line, its number from 1, its bytes without the newline and
    their SHA-256, read line by line from a regular file (OSError when it is missing or is not
    one). A line longer than ``MAX_MANIFEST_LINE`` bytes, more than ``MAX_MANIFEST_LINES`` lines
    or more than ``MAX_MANIFEST_BYTES``: ManifestTooLarge, one line naming the bound, raised as
    soon as it is passed (nothing past it is read, no long line is held)."""
    manifest = f"{archive}/{MANIFEST}"
    refused = "refused, nothing in this archive was checked; compare it with its backup"
    past = "past what reporter reads"
    read = number = 0
    with _open_regular(archive / MANIFEST) as handle:
        while True:
            text = handle.readline(MAX_MANIFEST_LINE + 1)
            if not text:
                return
            read += len(text)
            line = text.removesuffix(b"\n")
            if len(line) > MAX_MANIFEST_LINE:
                raise ManifestTooLarge(
                    f"{manifest}:{number + 1}: longer than {MAX_MANIFEST_LINE:,} bytes, which no line "
                    f"reporter writes is (about 1 KiB each): {refused}"
                )
            if read > MAX_MANIFEST_BYTES:
                raise ManifestTooLarge(
                    f"{manifest}: larger than {_size(MAX_MANIFEST_BYTES)}, {past}: {refused}"
                )
            if not line.strip():
                continue
            number += 1
            if number > MAX_MANIFEST_LINES:
                raise ManifestTooLarge(
                    f"{manifest}: more than {MAX_MANIFEST_LINES:,} lines, {past}: {refused}"
                )
            yield number, line, sha256(line)


def _size(count: int) -> str:
    """A bound in words: "1 GiB", "256 MiB", or "1,234 bytes" when not whole mebibytes."""
    if count % (1024 * MiB) == 0:
        return f"{count // (1024 * MiB)} GiB"
    return f"{count // MiB} MiB" if count % MiB == 0 else f"{count:,} bytes"


@dataclass
class Summary:
    """What an archive's manifest lists (of one report or period, when ``manifest_summary`` is
    given them): the files still there, by kind, and those purged; and the whole chain's size."""

    reports: int = 0  # report PDFs
    messages: int = 0  # e-mails as sent (lines of kind "message")
    purged: int = 0  # files removed under retention: their SHA-256 stays in the manifest
    lines: int = 0  # the manifest's lines, every report and period: the chain verify checks whole
    outside: int = 0  # files still there of another report or period than those asked for
    listed: dict[str, set[str]] = field(default_factory=dict)  # report -> its periods, every line

    @property
    def files(self) -> int:
        return self.reports + self.messages


def manifest_summary(archive: Path, *, report: str | None = None, period: str | None = None) -> Summary:
    """Count the manifest's lines (read within its bounds) as ``Summary`` says: an archiving line
    whose file a later line purged counts as purged, a purge line is no file of its own. With
    ``report`` or ``period``, the files and purged files are those ``verify_archive`` checks for
    them; the other files still there are counted in ``outside``."""
    kinds: dict[str, str] = {}  # path -> "report" | "message"
    scoped: set[str] = set()  # paths of the report and period asked for
    purged: set[str] = set()
    listed: dict[str, set[str]] = {}
    lines = 0
    for number, blob, _digest in read_manifest(archive):
        lines = number
        entry, _problem = _parse_line("", blob)
        if entry is None:
            continue
        if entry.get("purged") is not None:
            purged.add(entry["path"])
            continue
        kinds[entry["path"]] = "message" if entry.get("kind") == "message" else "report"
        listed.setdefault(entry["report"], set()).add(entry["period"])
        if (not report or entry["report"] == report) and (not period or entry["period"] == period):
            scoped.add(entry["path"])
    summary = Summary(purged=len(purged & scoped), lines=lines, listed=listed)
    for path, kind in kinds.items():
        if path in purged:
            continue
        if path not in scoped:
            summary.outside += 1
        elif kind == "message":
            summary.messages += 1
        else:
            summary.reports += 1
    return summary


@dataclass
class Listing:
    """What an archive's manifest says of one file in it (``listing_of``)."""

    archive: Path
    number: int | None  # the line that archived the file; None: no line lists it
    sha256: str | None
    purged: str | None  # the day a later line purged it under retention


def listing_of(path: Path) -> Listing | None:
    """The manifest line of ``path`` when it lies where an archive keeps a report's PDF
    (``<archive>/<report>/<period>/``, the archive holding a manifest); None elsewhere, or when
    the manifest cannot be read (``reporter verify`` says why). A manifest past its bounds is
    refused (ManifestTooLarge), as by ``verify`` and ``audit``."""
    archive = path.absolute().parents[2] if len(path.absolute().parents) > 2 else None
    if archive is None or _manifest_refused(archive / MANIFEST):
        return None
    rel = path.absolute().relative_to(archive).as_posix()
    found = Listing(archive, None, None, None)
    try:
        for number, blob, _digest in read_manifest(archive):
            entry, _problem = _parse_line("", blob)
            if entry is None or entry["path"] != rel:
                continue
            if entry.get("purged") is not None:
                found.purged = str(entry.get("time"))[:10]
            elif found.number is None:
                found.number, found.sha256 = number, entry["sha256"]
    except OSError:
        return None
    return found


def _not_regular(path: Path) -> str | None:
    """What ``path`` is when it exists and is not a regular file ("a FIFO", "a symlink"…), else None.
    Read from its ``lstat``: nothing is opened, no link followed."""
    try:
        mode = path.lstat().st_mode
    except OSError:
        return None
    return _kind_of(mode)


def _kind_of(mode: int) -> str | None:
    if stat.S_ISREG(mode):
        return None
    for test, kind in (
        (stat.S_ISLNK, "a symlink"),
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a device"),
        (stat.S_ISBLK, "a device"),
    ):
        if test(mode):
            return kind
    return "not a file"


def _open_checked(path: Path, flags: int) -> int:
    """A descriptor of ``path`` opened without following a link and without blocking (a FIFO
    would wait for a writer forever), then back to blocking; OSError unless a regular file."""
    fd = os.open(path, flags | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0), 0o644)
    try:
        kind = _kind_of(os.fstat(fd).st_mode)
        if kind is not None:
            raise OSError(f"{path}: {kind}, not a regular file")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_regular(path: Path) -> BinaryIO:
    """``path``, a regular file, opened for reading (``_open_checked``)."""
    return os.fdopen(_open_checked(path, os.O_RDONLY), "rb")


def _ledger_problems(where: str, digest: str, record: Any, records: Mapping[int, Any]) -> list[str]:
    """A line must be the one the ledger recorded, and the ledger must know every line."""
    if record is not None and record["sha256"] != digest:
        return [f"{where}: differs from the line the ledger recorded when it was written (changed)"]
    if record is None and records:
        return [f"{where}: not recorded in the ledger (added after archiving)"]
    return []


def _parse_line(where: str, blob: bytes) -> tuple[dict[str, Any] | None, str]:
    """The line's entry, or None and the reason it is not a valid manifest line."""
    try:
        text = blob.decode("utf-8")
    except UnicodeDecodeError:
        return None, f"{where}: not UTF-8 text"
    try:
        entry = json.loads(text)
    except json.JSONDecodeError:
        return None, f"{where}: not a valid manifest line (not JSON)"
    if not isinstance(entry, dict):
        kind = "null" if entry is None else _KINDS.get(type(entry), type(entry).__name__)
        return None, f"{where}: not a valid manifest line ({kind}, not an object)"
    bad = [
        name
        for name, kind in _FIELDS.items()
        if not isinstance(entry.get(name), kind) or isinstance(entry.get(name), bool)
    ]
    if bad:
        return None, f"{where}: not a valid manifest line (missing or wrong: {', '.join(bad)})"
    return entry, ""


def _link_problems(where: str, entry: dict[str, Any], prev: str, key: str | None) -> list[str]:
    """The hash chain to the line before, and the line's HMAC when a key is set."""
    problems: list[str] = []
    if entry["prev"] != prev:
        problems.append(
            f"{where}: hash chain broken at {entry['path']} "
            "(a line before it was edited, removed or reordered)"
        )
    if key:
        if "hmac" not in entry:
            problems.append(f"{where}: no HMAC (REPORTER_ARCHIVE_KEY is set: every line must carry one)")
        elif not hmac.compare_digest(str(entry["hmac"]), line_hmac(key, entry)):
            problems.append(f"{where}: HMAC mismatch (not written with this REPORTER_ARCHIVE_KEY)")
    return problems


def _duplicate(
    where: str,
    number: int,
    entry: dict[str, Any],
    listed: dict[str, int],
    versions: dict[tuple[str, str, int], int],
) -> str | None:
    """Why the line repeats an earlier path or version; otherwise records it and returns None."""
    rel = entry["path"]
    if rel in listed:
        return f"{where}: duplicate entry for {rel} (also on line {listed[rel]})"
    listed[rel] = number
    if entry.get("kind") == "message":  # a message shares its delivery's version with others
        return None
    ident = (entry["report"], entry["period"], entry["version"])
    if ident in versions:
        return (
            f"{where}: duplicate entry for {entry['report']} {entry['period']} v{entry['version']} "
            f"(also on line {versions[ident]})"
        )
    versions[ident] = number
    return None


def _file_problems(archive: Path, root: Path, number: int, entry: dict[str, Any]) -> list[str]:
    """The PDF a line lists: where it belongs, present, unaltered, with the listed attachments."""
    where = f"{MANIFEST}:{number}"
    rel = entry["path"]
    refused = _refused_path(archive, root, rel)
    if refused:
        return [f"{where}: {rel}: {refused}, refused"]
    problems: list[str] = []
    if entry.get("kind") == "message":
        return _message_problems(archive, number, entry)
    expected = (
        f"{entry['report']}/{entry['period']}/{entry['report']}_{entry['period']}_v{entry['version']}.pdf"
    )
    if rel != expected:
        problems.append(f"{where}: {rel}: not where its report, period and version belong ({expected})")
    data, problem = _read_listed(archive / rel, rel, number, entry)
    if data is None:
        problems.append(problem)
        return problems
    try:
        inside = attachment_digests(data)
        blobs = attachments_of(data, only={"results.json"})
    except Exception as exc:  # an unreadable PDF is a finding, not a crash
        problems.append(f"{rel}: attachments unreadable: {exc}")
        return problems
    if inside != entry["attachments"]:
        problems.append(f"{rel}: attachments differ from manifest line {number}")
        return problems
    if "results.json" in blobs:
        problems += _check_results(rel, number, entry, blobs["results.json"])
    return problems


def _message_problems(archive: Path, number: int, entry: dict[str, Any]) -> list[str]:
    """An archived e-mail a line lists: in its report and period's ``messages/`` folder, present,
    the bytes the line says."""
    rel = entry["path"]
    folder = f"{entry['report']}/{entry['period']}/{MESSAGES}/"
    problems = []
    if not (rel.startswith(folder) and rel.endswith(".eml") and "/" not in rel[len(folder) :]):
        problems.append(
            f"{MANIFEST}:{number}: {rel}: not where its report and period's messages belong ({folder})"
        )
    data, problem = _read_listed(archive / rel, rel, number, entry)
    if data is None:
        problems.append(problem)
    return problems


def _read_listed(path: Path, rel: str, number: int, entry: dict[str, Any]) -> tuple[bytes | None, str]:
    """The bytes of a listed PDF, or None and why: its SHA-256 differs from the line's (altered),
    only its size does (the line was edited, the file is intact), it is larger than MAX_PDF (its
    size differing from the line's: altered, unread), it became something else meanwhile."""
    odd = _not_regular(path)
    if odd is not None:
        return None, f"{rel}: {odd}, not a regular file: not opened (listed on manifest line {number})"
    if not path.is_file():
        note = ""
        if path.with_name(f".{path.name}.partial").is_file():
            note = "; archiving was interrupted after the manifest was written: the next run completes it"
        return None, f"{rel}: missing (listed on manifest line {number}){note}"
    altered = f"{rel}: altered (SHA-256 differs from manifest line {number})"
    size = path.stat().st_size
    if size > MAX_PDF:
        if size != entry["size"]:
            return None, altered
        return None, f"{rel}: larger than {_size(MAX_PDF)}: not read (listed on manifest line {number})"
    try:
        with _open_regular(path) as handle:
            data = handle.read(MAX_PDF + 1)
    except OSError as exc:  # replaced since by something else
        return None, f"{rel}: cannot be read ({exc.strerror or exc})"
    if sha256(data) != entry["sha256"]:
        return None, altered
    if len(data) != entry["size"]:  # the bytes the line names, so the line's size was changed
        return None, (
            f"{rel}: the file is intact, manifest line {number} was edited: the line records a size "
            f"of {entry['size']:,} bytes, the file has {len(data):,} bytes and the SHA-256 the line "
            "records (an edited line no longer hashes to what the next line and the ledger recorded, "
            "nor matches its HMAC)"
        )
    return data, ""


def _refused_path(archive: Path, root: Path, rel: str) -> str | None:
    """Why a manifest path may not be followed: absolute, ``..``, a symlink, outside."""
    pure = Path(rel)
    if pure.is_absolute() or rel.startswith(("/", "\\")):
        return "absolute path"
    if ".." in pure.parts or "\\" in rel:
        return "path leaves the archive ('..')"
    current = archive
    for part in pure.parts:
        current = current / part
        if current.is_symlink():
            return "a symlink"
    try:
        (archive / pure).resolve().relative_to(root)
    except ValueError:
        return "outside the archive"
    return None


def _check_results(rel: str, number: int, entry: dict[str, Any], blob: bytes) -> list[str]:
    """The PDF's own results.json must be for the line's report and period."""
    try:
        inner = json.loads(blob)
        found = (inner.get("report"), inner.get("period"))
    except (ValueError, AttributeError):
        return [f"{rel}: its embedded results.json is unreadable"]
    if found != (entry["report"], entry["period"]):
        return [
            f"{rel}: the PDF's embedded results.json is for {found[0]} {found[1]}, "
            f"manifest line {number} says {entry['report']} {entry['period']}"
        ]
    return []


def _extra_files(archive: Path, listed: dict[str, int], report: str | None, period: str | None) -> list[str]:
    """The PDFs the manifest does not list, and everything that is not a regular file (a FIFO, a
    device, a socket, a symlink: named, never opened nor followed) but what a line's problem
    names already."""
    problems = []
    for rel, kind in _walk(archive):
        if kind is not None:
            if not any(p == rel or p.startswith(f"{rel}/") for p in listed):
                problems.append(f"{rel}: {kind}, not a regular file: not opened")
            continue
        if (
            rel.endswith((".pdf", ".eml"))
            and not rel.rpartition("/")[2].startswith(".")
            and rel not in listed
            and (not report or rel.startswith(f"{report}/"))
            and (not period or f"/{period}/" in f"/{rel}")
        ):
            problems.append(f"{rel}: extra (not in the manifest)")
    return problems


def _walk(folder: Path, prefix: str = "") -> Iterator[tuple[str, str | None]]:
    """Every entry under ``folder`` but its folders, sorted, as (relative path, None for a
    regular file or what it is instead); symlinks are not followed."""
    with os.scandir(folder) as found:
        entries = sorted(found, key=lambda e: e.name)
    for entry in entries:
        rel = f"{prefix}{entry.name}"
        try:
            mode = entry.stat(follow_symlinks=False).st_mode
        except OSError:
            continue  # gone since
        if stat.S_ISDIR(mode):
            yield from _walk(Path(entry.path), f"{rel}/")
        else:
            yield rel, _kind_of(mode)
