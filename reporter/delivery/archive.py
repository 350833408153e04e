"""The auditor's archive: PDF/A-3a (and PDF/UA-1) with its evidence inside, and a tamper-evident manifest.

Layout under ``delivery.archive.dir``::

    <report>/<period>/<report>_<period>_v<N>.pdf    never overwritten, never deleted
    manifest.jsonl                                  one line per archived file, hash-chained

Each manifest line holds the file's path (relative to the archive), SHA-256, size, run id,
time, reason, the SHA-256 of each attachment inside the PDF, and ``prev``: the SHA-256 of the
previous line's text (64 zeros for the first). Editing, deleting or reordering lines breaks the
chain; editing or deleting a file breaks its hash. The manifest is rewritten atomically (temp
file, fsync, rename), so a crash leaves the old or the new manifest, never a torn line; the
PDF is first written as a hidden partial file and renamed into place after the manifest (see
``archive_pdf``), so an interrupted archiving still verifies.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import mimetypes
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

mimetypes.add_type("application/yaml", ".yaml")
mimetypes.add_type("application/yaml", ".yml")

MANIFEST = "manifest.jsonl"
GENESIS = "0" * 64


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


def attachments_of(pdf: bytes) -> dict[str, bytes]:
    """The embedded files of a PDF, by name."""
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(pdf))
    return {name: contents[0] for name, contents in reader.attachments.items()}


@dataclass
class Archived:
    path: Path
    version: int
    line: dict[str, Any]


def _lines(archive: Path) -> list[str]:
    manifest = archive / MANIFEST
    if not manifest.is_file():
        return []
    return [line for line in manifest.read_text(encoding="utf-8").splitlines() if line.strip()]


def archive_pdf(
    archive: Path,
    report: str,
    period: str,
    pdf: bytes,
    *,
    run_id: str,
    now: dt.datetime,
    reason: str | None = None,
) -> Archived:
    """Append ``pdf`` to the archive as the next version; return where it went.

    Order: the PDF is written as a hidden ``.<name>.partial`` file, the manifest is replaced
    atomically (the commit point), then the partial file is renamed into place. A crash before
    the commit leaves only a hidden partial file (ignored by verify, removed by the next run);
    a crash after it leaves a partial file that the next run renames into place."""
    _recover(archive)
    folder = archive / report / period
    folder.mkdir(parents=True, exist_ok=True)
    taken = [
        int(m.group(1))
        for p in folder.glob(f"{report}_{period}_v*.pdf")
        if (m := re.search(r"_v(\d+)\.pdf$", p.name))
    ]
    version = max(taken, default=0) + 1
    path = folder / f"{report}_{period}_v{version}.pdf"
    partial = path.with_name(f".{path.name}.partial")
    _write_new(partial, pdf)
    lines = _lines(archive)
    entry = {
        "path": str(path.relative_to(archive)),
        "sha256": sha256(pdf),
        "size": len(pdf),
        "report": report,
        "period": period,
        "version": version,
        "run_id": run_id,
        "time": now.isoformat(timespec="seconds"),
        "reason": reason,
        "attachments": {name: sha256(data) for name, data in sorted(attachments_of(pdf).items())},
        "prev": sha256(lines[-1].encode()) if lines else GENESIS,
    }
    text = (
        "".join(line + "\n" for line in lines) + json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n"
    )
    _replace(archive / MANIFEST, text.encode("utf-8"))
    os.rename(partial, path)
    _fsync_dir(folder)
    return Archived(path, version, entry)


def _recover(archive: Path) -> None:
    """Finish or discard what an interrupted archiving left behind."""
    listed = {}
    for text in _lines(archive):
        try:
            entry = json.loads(text)
        except json.JSONDecodeError:
            continue
        listed[str(entry.get("path"))] = entry.get("sha256")
    for partial in archive.rglob(".*.partial"):
        final = partial.with_name(partial.name[1 : -len(".partial")])
        rel = str(final.relative_to(archive))
        if rel in listed and not final.exists() and sha256(partial.read_bytes()) == listed[rel]:
            os.rename(partial, final)
        else:
            partial.chmod(0o644)
            partial.unlink()


def _write_new(path: Path, data: bytes) -> None:
    """Create ``path`` (never overwrite), durably."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_dir(folder: Path) -> None:
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _replace(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def verify_archive(archive: Path, *, report: str | None = None, period: str | None = None) -> list[str]:
    """Every problem found, each naming its path; an empty list means the archive is intact."""
    problems: list[str] = []
    lines = _lines(archive)
    if not (archive / MANIFEST).is_file():
        return [f"{archive / MANIFEST}: missing"]
    listed: set[str] = set()
    prev = GENESIS
    for number, text in enumerate(lines, start=1):
        try:
            entry = json.loads(text)
        except json.JSONDecodeError:
            problems.append(f"{MANIFEST}:{number}: not a valid manifest line")
            prev = sha256(text.encode())
            continue
        if entry.get("prev") != prev:
            problems.append(
                f"{MANIFEST}:{number}: hash chain broken at {entry.get('path')} "
                "(a line before it was edited, removed or reordered)"
            )
        prev = sha256(text.encode())
        listed.add(str(entry.get("path")))
        if (report and entry.get("report") != report) or (period and entry.get("period") != period):
            continue
        path = archive / str(entry.get("path"))
        if not path.is_file():
            note = ""
            if path.with_name(f".{path.name}.partial").is_file():
                note = "; archiving was interrupted after the manifest was written: the next run completes it"
            problems.append(f"{entry.get('path')}: missing (listed on manifest line {number}){note}")
            continue
        data = path.read_bytes()
        if sha256(data) != entry.get("sha256") or len(data) != entry.get("size"):
            problems.append(f"{entry.get('path')}: altered (SHA-256 differs from manifest line {number})")
            continue
        try:
            inside = {name: sha256(blob) for name, blob in sorted(attachments_of(data).items())}
        except Exception as exc:  # an unreadable PDF is a finding, not a crash
            problems.append(f"{entry.get('path')}: attachments unreadable: {exc}")
            continue
        if inside != entry.get("attachments"):
            problems.append(f"{entry.get('path')}: attachments differ from manifest line {number}")
    for pdf in sorted(p for p in archive.rglob("*.pdf") if not p.name.startswith(".")):
        rel = str(pdf.relative_to(archive))
        if (
            rel not in listed
            and (not report or rel.startswith(f"{report}/"))
            and (not period or f"/{period}/" in f"/{rel}")
        ):
            problems.append(f"{rel}: extra (not in the manifest)")
    return problems
