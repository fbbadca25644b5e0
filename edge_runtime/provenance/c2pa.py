"""C2PA manifest stores (JUMBF boxes holding CBOR): what the file claims, never verified (no signature check)."""
from __future__ import annotations

import struct

from . import rules
from .rules import AI_DECLARED, C2PA
from .xmp import DIGITAL_SOURCE_TYPE, DIGITAL_SOURCE_TYPES

MAX_STORE_BYTES = 1024 * 1024  # bytes of a C2PA manifest store searched


def judge(store: bytes, where: str, items: list[dict]) -> None:
    """Judge one manifest store: the claim it makes, its claim generator, an AI digital source type in its
    actions."""
    store = store[:MAX_STORE_BYTES]
    if b"c2pa" not in store:
        return
    generator = _claim_generator(store)
    items.append(rules.item(C2PA, f"C2PA manifest, not verified ({where})" +
                            (f", claim generator: {generator}" if generator else "")))
    if generator:
        rules.software("C2PA claim generator", generator, items, report_other=False)
    source_type = DIGITAL_SOURCE_TYPE.search(store)
    if source_type:
        items.append(rules.item(AI_DECLARED, "C2PA action digitalSourceType: " +
                                DIGITAL_SOURCE_TYPES[source_type.group(1)]))


def _claim_generator(store: bytes) -> str:
    """The claim's `claim_generator` text (C2PA 1.x) or `claim_generator_info` name (2.x), read from CBOR."""
    for key, then in ((b"\x6fclaim_generator", b""), (b"\x74claim_generator_info", b"\x64name")):
        start = store.find(key)
        if start < 0:
            continue
        start += len(key)
        if then:
            found = store.find(then, start, start + 64)
            if found < 0:
                continue
            start = found + len(then)
        text = _cbor_text(store, start)
        if text:
            return text
    return ""


def _cbor_text(data: bytes, position: int) -> str:
    """The CBOR text string at `position` (major type 3, length < 65536), or "" if there is none."""
    if position >= len(data) or data[position] >> 5 != 3:
        return ""
    info = data[position] & 0x1F
    if info < 24:
        length, start = info, position + 1
    elif info == 24:
        length, start = data[position + 1], position + 2
    elif info == 25:
        length, start = struct.unpack_from(">H", data, position + 1)[0], position + 3
    else:
        return ""
    return rules.clean(data[start:start + length].decode("utf-8", "replace"))
