"""Provenance metadata read from an image file's own bytes: what the file says about where it came from.

Standard library only (struct, zlib, re, json). The container is walked by hand with strict caps (bytes read,
segments walked, metadata blocks judged, text inflated, text scanned), and every rule runs in linear time on
that capped text, so hostile metadata (huge or lying chunk lengths, zlib bombs in zTXt/iTXt, endless segments,
thousands of EXIF blocks, text built to make a regex backtrack) costs a few milliseconds at most and never
raises. One module per container (`png`, `jpeg`, `webp`) and per payload (`exif`, `xmp`, `c2pa`); `rules`
judges the text they find.

`inspect(source)` returns evidence items `{"kind", "detail"}`:

- `generator`: the metadata names an AI image generator (A1111/Forge `parameters`, ComfyUI `prompt` /
  `workflow`, NovelAI `Software` / `Comment`, InvokeAI, EXIF `Software` / `UserComment` /
  `ImageDescription`, XMP `CreatorTool`, a C2PA claim generator);
- `ai-declared`: IPTC DigitalSourceType (in XMP or a C2PA manifest) says the picture is, or contains, the
  output of a trained generative model;
- `c2pa`: the file claims a C2PA manifest (content credentials), with its claim generator where readable.
  Nothing is verified: no signature, no hash, no certificate is checked;
- `software`: other software named by the file (an editor, a camera); not a sign of AI.

Only `generator` and `ai-declared` are evidence of AI (`names_generator`). No metadata proves nothing: files
lose their metadata all the time, so absence is never evidence of human work.
"""
from __future__ import annotations

import io
import os
import struct
import zlib

from . import jpeg, png, webp
from .rules import AI_DECLARED, AI_KINDS, C2PA, GENERATOR, MAX_ITEMS, SOFTWARE

__all__ = ["inspect", "names_generator", "GENERATOR", "AI_DECLARED", "C2PA", "SOFTWARE", "AI_KINDS"]

MAX_FILE_BYTES = 64 * 1024 * 1024  # bytes of a file inspected (the rest is ignored)


def inspect(source) -> list[dict]:
    """Evidence items `{"kind", "detail"}` from the metadata of a path, bytes or seekable binary stream.

    Never raises: unreadable sources and malformed metadata give whatever could be read (often nothing).
    """
    data = _read(source)
    items: list[dict] = []
    try:
        if data.startswith(png.MAGIC):
            png.walk(data, items)
        elif data.startswith(b"\xff\xd8"):
            jpeg.walk(data, items)
        elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            webp.walk(data, items)
    except (ValueError, struct.error, IndexError, zlib.error, RecursionError):
        pass  # malformed beyond what the walkers check: keep what was found before it
    unique, seen = [], set()
    for item in items:
        key = (item["kind"], item["detail"])
        if key not in seen:
            seen.add(key)
            unique.append(item)
    return unique[:MAX_ITEMS]


def names_generator(evidence: list[dict]) -> bool:
    """Whether any item says the picture came from an AI generator."""
    return any(item["kind"] in AI_KINDS for item in evidence)


def _read(source) -> bytes:
    """At most MAX_FILE_BYTES of the source; a stream is rewound to where it was; b"" if unreadable."""
    try:
        if isinstance(source, (bytes, bytearray, memoryview)):
            return bytes(source[:MAX_FILE_BYTES])
        if isinstance(source, (str, os.PathLike)):
            with open(source, "rb") as f:
                return f.read(MAX_FILE_BYTES)
        if source.seekable():
            position = source.tell()
            data = source.read(MAX_FILE_BYTES)
            source.seek(position)
            return data
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        pass
    return b""
