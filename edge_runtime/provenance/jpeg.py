"""JPEG: APP1 EXIF and XMP segments, APP11 JUMBF (C2PA) segments."""
from __future__ import annotations

import struct

from . import c2pa, exif, xmp
from .rules import MAX_BLOCKS, MAX_SEGMENTS

XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"


def walk(data: bytes, items: list[dict]) -> None:
    """Judge the metadata segments before the first scan: at most MAX_BLOCKS EXIF / XMP segments, and the C2PA
    store gathered from APP11 segments up to c2pa.MAX_STORE_BYTES."""
    position, blocks, c2pa_parts, c2pa_bytes = 2, 0, [], 0
    for _ in range(MAX_SEGMENTS):
        if position + 4 > len(data) or data[position] != 0xFF:
            break
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in (0xD9, 0xDA) or 0xD0 <= marker <= 0xD8 or marker == 0x01:
            break  # end of image, start of scan, or a marker without a payload: no metadata past here
        length = struct.unpack_from(">H", data, position + 2)[0]
        if length < 2:
            break
        payload = data[position + 4:position + 2 + length]
        position += 2 + length
        if marker == 0xEB and payload.startswith(b"JP"):
            if c2pa_bytes < c2pa.MAX_STORE_BYTES:
                c2pa_parts.append(payload)
                c2pa_bytes += len(payload)
            continue
        if marker != 0xE1 or not payload.startswith((b"Exif\x00\x00", XMP_HEADER)):
            continue
        blocks += 1
        if blocks > MAX_BLOCKS:
            break
        if payload.startswith(XMP_HEADER):
            xmp.judge(payload[len(XMP_HEADER):], items)
        else:
            exif.judge(payload, items)
    if c2pa_parts:
        c2pa.judge(b"".join(c2pa_parts), "JPEG APP11 JUMBF", items)
