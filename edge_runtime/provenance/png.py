"""PNG: text chunks (tEXt, zTXt, iTXt), eXIf, and the C2PA caBX chunk."""
from __future__ import annotations

import struct
import zlib

from . import c2pa, exif, rules, xmp
from .rules import MAX_BLOCKS, MAX_CHUNK_BYTES, MAX_SEGMENTS, MAX_TEXT_BYTES

MAGIC = b"\x89PNG\r\n\x1a\n"
METADATA = (b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"caBX")


def walk(data: bytes, items: list[dict]) -> None:
    """Judge the metadata chunks of a PNG: at most MAX_SEGMENTS chunks walked, MAX_BLOCKS of them judged."""
    position, blocks = len(MAGIC), 0
    for _ in range(MAX_SEGMENTS):
        if position + 8 > len(data):
            return
        length, kind = struct.unpack_from(">I4s", data, position)
        start, position = position + 8, position + 12 + length
        if kind == b"IEND":
            return
        if kind not in METADATA:
            continue
        blocks += 1
        if blocks > MAX_BLOCKS:
            return
        body = data[start:start + min(length, MAX_CHUNK_BYTES)]  # shorter where the length runs past the file
        if kind == b"tEXt":
            key, _, value = body.partition(b"\x00")
            rules.text(_name(key), value[:MAX_TEXT_BYTES].decode("latin-1"), items)
        elif kind == b"zTXt":
            key, _, rest = body.partition(b"\x00")
            rules.text(_name(key), _inflate(rest[1:]).decode("latin-1"), items)
        elif kind == b"iTXt":
            key, value = _itxt(body)
            if key == "XML:com.adobe.xmp":
                xmp.judge(value.encode("utf-8", "replace"), items)
            else:
                rules.text(key, value, items)
        elif kind == b"eXIf":
            exif.judge(body, items)
        else:
            c2pa.judge(body, "PNG caBX chunk", items)


def _itxt(body: bytes) -> tuple[str, str]:
    """(keyword, text) of an iTXt chunk body, inflating compressed text within the cap."""
    key, _, rest = body.partition(b"\x00")
    compressed = rest[:1] == b"\x01"
    _language, _, rest = rest[2:].partition(b"\x00")
    _translated, _, text = rest.partition(b"\x00")
    text = _inflate(text) if compressed else text[:MAX_TEXT_BYTES]
    return _name(key), text.decode("utf-8", "replace")


def _inflate(compressed: bytes) -> bytes:
    """zlib-inflate at most MAX_TEXT_BYTES (a zlib bomb stops there); b"" if the stream is corrupt."""
    try:
        return zlib.decompressobj().decompress(compressed, MAX_TEXT_BYTES)
    except zlib.error:
        return b""


def _name(raw: bytes) -> str:
    return raw[:79].decode("latin-1")
