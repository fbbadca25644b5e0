"""WebP (RIFF): the EXIF, XMP and C2PA chunks."""
from __future__ import annotations

import struct

from . import c2pa, exif, xmp
from .rules import MAX_BLOCKS, MAX_CHUNK_BYTES, MAX_SEGMENTS

METADATA = (b"EXIF", b"XMP ", b"C2PA")


def walk(data: bytes, items: list[dict]) -> None:
    """Judge the metadata chunks of a WebP: at most MAX_SEGMENTS chunks walked, MAX_BLOCKS of them judged."""
    position, blocks = 12, 0
    for _ in range(MAX_SEGMENTS):
        if position + 8 > len(data):
            return
        kind, length = struct.unpack_from("<4sI", data, position)
        start, position = position + 8, position + 8 + length + (length & 1)
        if kind not in METADATA:
            continue
        blocks += 1
        if blocks > MAX_BLOCKS:
            return
        body = data[start:start + min(length, MAX_CHUNK_BYTES)]
        if kind == b"EXIF":
            exif.judge(body, items)
        elif kind == b"XMP ":
            xmp.judge(body, items)
        else:
            c2pa.judge(body, "WebP C2PA chunk", items)
