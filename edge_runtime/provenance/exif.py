"""EXIF (a TIFF structure): IFD0 Software / ImageDescription, Exif IFD UserComment."""
from __future__ import annotations

import struct

from . import rules
from .rules import MAX_TEXT_BYTES

MAX_ENTRIES = 256  # IFD entries read per directory
TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 7: 1, 9: 4, 10: 8}


def judge(tiff: bytes, items: list[dict]) -> None:
    """Judge one EXIF block (with or without the "Exif\\0\\0" header)."""
    if tiff.startswith(b"Exif\x00\x00"):
        tiff = tiff[6:]
    if tiff[:4] not in (b"II*\x00", b"MM\x00*"):
        return
    order = "<" if tiff[:2] == b"II" else ">"
    ifd0 = _ifd(tiff, order, struct.unpack_from(order + "I", tiff, 4)[0])
    if 0x0131 in ifd0:
        rules.software("EXIF Software", _ascii(ifd0[0x0131]), items, report_other=True)
    if 0x010E in ifd0:
        rules.parameters_or_name("EXIF ImageDescription", _ascii(ifd0[0x010E]), items)
    if 0x8769 in ifd0 and len(ifd0[0x8769]) >= 4:
        exif_ifd = _ifd(tiff, order, struct.unpack_from(order + "I", ifd0[0x8769])[0])
        if 0x9286 in exif_ifd:
            rules.parameters_or_name("EXIF UserComment", _user_comment(exif_ifd[0x9286], order), items)


def _ifd(tiff: bytes, order: str, offset: int) -> dict[int, bytes]:
    """{tag: raw value bytes} of the IFD at `offset` (at most MAX_ENTRIES entries, values bounds-checked)."""
    if offset + 2 > len(tiff):
        return {}
    count = min(struct.unpack_from(order + "H", tiff, offset)[0], MAX_ENTRIES)
    entries = {}
    for index in range(count):
        entry = offset + 2 + 12 * index
        if entry + 12 > len(tiff):
            break
        tag, kind, n = struct.unpack_from(order + "HHI", tiff, entry)
        size = TYPE_SIZES.get(kind, 1) * n
        if size <= 4:
            entries[tag] = tiff[entry + 8:entry + 8 + size]
        else:
            start = struct.unpack_from(order + "I", tiff, entry + 8)[0]
            entries[tag] = tiff[start:start + min(size, MAX_TEXT_BYTES)]
    return entries


def _ascii(raw: bytes) -> str:
    return raw.split(b"\x00", 1)[0].decode("utf-8", "replace")


def _user_comment(raw: bytes, order: str) -> str:
    """EXIF UserComment: an 8-byte character-code prefix, then the text."""
    code, text = raw[:8], raw[8:]
    if code.startswith(b"UNICODE"):
        encoding = "utf-16-le" if order == "<" else "utf-16-be"
        if text[:2] in (b"\xff\xfe", b"\xfe\xff"):
            encoding = "utf-16"
        return text.decode(encoding, "replace").rstrip("\x00")
    return text.decode("utf-8", "replace").rstrip("\x00")
