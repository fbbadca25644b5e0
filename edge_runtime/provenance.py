"""Provenance metadata read from an image file's own bytes: what the file says about where it came from.

Standard library only (struct, zlib, re, json). The container is walked by hand with strict caps (bytes read,
segments walked, text inflated, text scanned), so hostile metadata (huge or lying chunk lengths, zlib bombs
in zTXt/iTXt, endless segments) costs a few milliseconds at most and never raises.

`inspect(source)` returns evidence items `{"kind", "detail"}`:

- `generator`: the metadata names an AI image generator (A1111/Forge `parameters`, ComfyUI `prompt` /
  `workflow`, NovelAI `Software` / `Comment`, InvokeAI, EXIF `Software` / `UserComment` /
  `ImageDescription`, XMP `CreatorTool`, a C2PA claim generator);
- `ai-declared`: IPTC DigitalSourceType (in XMP or a C2PA manifest) says the picture is, or contains, the
  output of a trained generative model;
- `c2pa`: a C2PA manifest (content credentials) is present, with its claim generator where readable;
- `software`: other software named by the file (an editor, a camera); not a sign of AI.

Only `generator` and `ai-declared` are evidence of AI (`names_generator`). No metadata proves nothing: files
lose their metadata all the time, so absence is never evidence of human work.
"""
from __future__ import annotations

import io
import json
import os
import re
import struct
import zlib

GENERATOR = "generator"
AI_DECLARED = "ai-declared"
C2PA = "c2pa"
SOFTWARE = "software"
AI_KINDS = (GENERATOR, AI_DECLARED)

MAX_FILE_BYTES = 64 * 1024 * 1024  # bytes of a file inspected (the rest is ignored)
MAX_SEGMENTS = 4096  # chunks / segments walked per file
MAX_TEXT_BYTES = 64 * 1024  # bytes of one text value looked at (after inflating)
MAX_C2PA_BYTES = 1024 * 1024  # bytes of a C2PA manifest store searched
MAX_CHUNK_BYTES = 1024 * 1024  # bytes of one metadata chunk copied out of the file (compressed or not)
MAX_ITEMS = 16  # evidence items kept per file
DETAIL_CHARS = 160

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
XMP_JPEG_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
PNG_METADATA = (b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"caBX")
WEBP_METADATA = (b"EXIF", b"XMP ", b"C2PA")

# Names of image generators and of the apps that run them, as they appear in Software / CreatorTool /
# claim-generator fields (lower case; matched on word boundaries).
GENERATOR_NAMES = re.compile(
    r"\b(novelai|stable[ -]?diffusion|sdxl|automatic1111|stable-diffusion-webui|comfyui|invokeai|fooocus|"
    r"swarmui|sd\.next|draw things|diffusionbee|midjourney|nijijourney|niji ?journey|dall[-·]?e|"
    r"openai|chatgpt|gpt-4o|firefly|imagen|ideogram|leonardo\.ai|flux\.1|bing image creator|"
    r"dreamstudio|nightcafe|tensor\.art|civitai|pixai|holara|animagine)\b")
SD_PARAMETERS = re.compile(r"\bSteps: \d+.*\bSampler: ", re.DOTALL)
SD_MODEL = re.compile(r"\bModel: ([^,\n]{1,80})")
DIGITAL_SOURCE_TYPES = {
    b"compositeWithTrainedAlgorithmicMedia":
        "compositeWithTrainedAlgorithmicMedia (contains output of a generative model)",
    b"trainedAlgorithmicMedia": "trainedAlgorithmicMedia (made by a generative model)",
}
DIGITAL_SOURCE_TYPE = re.compile(rb"digitalsourcetype/(compositeWithTrainedAlgorithmicMedia|trainedAlgorithmicMedia)\b")
XMP_CREATOR_TOOL = re.compile(rb"CreatorTool(?:=\"([^\"<]{1,200})\"|>([^<]{1,200})<)")


def inspect(source) -> list[dict]:
    """Evidence items `{"kind", "detail"}` from the metadata of a path, bytes or seekable binary stream.

    Never raises: unreadable sources and malformed metadata give whatever could be read (often nothing).
    """
    data = _read(source)
    items: list[dict] = []
    try:
        if data.startswith(PNG_MAGIC):
            _png(data, items)
        elif data.startswith(b"\xff\xd8"):
            _jpeg(data, items)
        elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            _webp(data, items)
    except (ValueError, struct.error, IndexError, zlib.error, RecursionError):
        pass  # malformed beyond what the walkers check: keep what was found before it
    unique = []
    for item in items:
        if item not in unique:
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


def _png(data: bytes, items: list[dict]) -> None:
    position = len(PNG_MAGIC)
    for _ in range(MAX_SEGMENTS):
        if position + 8 > len(data):
            return
        length, kind = struct.unpack_from(">I4s", data, position)
        body = _chunk(data, position + 8, length) if kind in PNG_METADATA else b""
        position += 12 + length
        if kind == b"tEXt":
            key, _, value = body.partition(b"\x00")
            _text(_name(key), value[:MAX_TEXT_BYTES].decode("latin-1"), items)
        elif kind == b"zTXt":
            key, _, rest = body.partition(b"\x00")
            _text(_name(key), _inflate(rest[1:]).decode("latin-1"), items)
        elif kind == b"iTXt":
            key, value = _itxt(body)
            if key == "XML:com.adobe.xmp":
                _xmp(value.encode("utf-8", "replace"), items)
            else:
                _text(key, value, items)
        elif kind == b"eXIf":
            _exif(body, items)
        elif kind == b"caBX":
            _c2pa(body, "PNG caBX chunk", items)
        elif kind == b"IEND":
            return


def _chunk(data: bytes, start: int, length: int) -> bytes:
    """A chunk's body, at most MAX_CHUNK_BYTES (and shorter where the declared length runs past the file)."""
    return data[start:start + min(length, MAX_CHUNK_BYTES)]


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


def _jpeg(data: bytes, items: list[dict]) -> None:
    position, c2pa_parts = 2, []
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
        if marker == 0xE1 and payload.startswith(b"Exif\x00\x00"):
            _exif(payload, items)
        elif marker == 0xE1 and payload.startswith(XMP_JPEG_HEADER):
            _xmp(payload[len(XMP_JPEG_HEADER):], items)
        elif marker == 0xEB and payload.startswith(b"JP"):
            c2pa_parts.append(payload)
    if c2pa_parts:
        _c2pa(b"".join(c2pa_parts)[:MAX_C2PA_BYTES], "JPEG APP11 JUMBF", items)


def _webp(data: bytes, items: list[dict]) -> None:
    position = 12
    for _ in range(MAX_SEGMENTS):
        if position + 8 > len(data):
            return
        kind, length = struct.unpack_from("<4sI", data, position)
        body = _chunk(data, position + 8, length) if kind in WEBP_METADATA else b""
        position += 8 + length + (length & 1)
        if kind == b"EXIF":
            _exif(body, items)
        elif kind == b"XMP ":
            _xmp(body, items)
        elif kind == b"C2PA":
            _c2pa(body, "WebP C2PA chunk", items)


def _text(key: str, value: str, items: list[dict]) -> None:
    """Judge one PNG text chunk (a blank one says nothing)."""
    if not _clean(value):
        return
    where = f"PNG text '{key}'"
    lowered = key.lower()
    if lowered == "parameters":
        tool = "SwarmUI" if "sui_image_params" in value else "A1111/Forge-style"
        items.append(_item(GENERATOR, f"{where} ({tool} generation parameters): {_summary(value)}"))
    elif lowered in ("prompt", "workflow") and ('"class_type"' in value or '"nodes"' in value):
        items.append(_item(GENERATOR, f"{where} (ComfyUI {lowered} graph)"))
    elif lowered in ("invokeai_metadata", "invokeai_graph", "sd-metadata", "dream"):
        items.append(_item(GENERATOR, f"{where} (InvokeAI generation metadata): {_summary(value)}"))
    elif lowered == "comment" and _novelai_settings(value):
        items.append(_item(GENERATOR, f"{where} (NovelAI-style generation settings): {_summary(value)}"))
    elif lowered in ("software", "source", "generator", "creator", "author", "title"):
        _software(where, value, items, report_other=lowered == "software")


def _novelai_settings(value: str) -> bool:
    try:
        settings = json.loads(value)
    except (ValueError, RecursionError):
        return False
    return isinstance(settings, dict) and "steps" in settings and ("sampler" in settings or "uc" in settings)


def _software(where: str, value: str, items: list[dict], report_other: bool) -> None:
    """A name field: `generator` when it names one; else `software` if `report_other`."""
    value = _clean(value)
    if not value:
        return
    if GENERATOR_NAMES.search(value.lower().replace("_", " ")):  # C2PA writes names like Adobe_Firefly
        items.append(_item(GENERATOR, f"{where}: {value}"))
    elif report_other:
        items.append(_item(SOFTWARE, f"{where}: {value}"))


def _summary(value: str) -> str:
    """The short part of a generation-parameters text worth showing: model and settings, else its start."""
    value = value[:MAX_TEXT_BYTES]
    model = SD_MODEL.search(value)
    settings = value.find("Steps: ")
    if settings >= 0:
        summary = value[settings:]
        return _clean(f"model {model.group(1)}; {summary}" if model else summary)
    return _clean(value)


def _exif(tiff: bytes, items: list[dict]) -> None:
    """EXIF (a TIFF structure, with or without the "Exif\\0\\0" header): IFD0 Software / ImageDescription,
    Exif IFD UserComment."""
    if tiff.startswith(b"Exif\x00\x00"):
        tiff = tiff[6:]
    if tiff[:4] not in (b"II*\x00", b"MM\x00*"):
        return
    order = "<" if tiff[:2] == b"II" else ">"
    ifd0 = _ifd(tiff, order, struct.unpack_from(order + "I", tiff, 4)[0])
    if 0x0131 in ifd0:
        _software("EXIF Software", _ascii(ifd0[0x0131]), items, report_other=True)
    if 0x010E in ifd0:
        _parameters_or_name("EXIF ImageDescription", _ascii(ifd0[0x010E]), items)
    if 0x8769 in ifd0 and len(ifd0[0x8769]) >= 4:
        exif_ifd = _ifd(tiff, order, struct.unpack_from(order + "I", ifd0[0x8769])[0])
        if 0x9286 in exif_ifd:
            _parameters_or_name("EXIF UserComment", _user_comment(exif_ifd[0x9286], order), items)


def _ifd(tiff: bytes, order: str, offset: int) -> dict[int, bytes]:
    """{tag: raw value bytes} of the IFD at `offset` (at most 256 entries, values bounds-checked)."""
    sizes = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 7: 1, 9: 4, 10: 8}
    if offset + 2 > len(tiff):
        return {}
    count = min(struct.unpack_from(order + "H", tiff, offset)[0], 256)
    entries = {}
    for index in range(count):
        entry = offset + 2 + 12 * index
        if entry + 12 > len(tiff):
            break
        tag, kind, n = struct.unpack_from(order + "HHI", tiff, entry)
        size = sizes.get(kind, 1) * n
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


def _parameters_or_name(where: str, value: str, items: list[dict]) -> None:
    """A free-text field: generation parameters (A1111 writes them to UserComment), or a generator's name."""
    if SD_PARAMETERS.search(value[:MAX_TEXT_BYTES]):
        items.append(_item(GENERATOR, f"{where} (A1111/Forge-style generation parameters): {_summary(value)}"))
    else:
        _software(where, value, items, report_other=False)


def _xmp(xmp: bytes, items: list[dict]) -> None:
    """XMP packet: IPTC DigitalSourceType and xmp:CreatorTool."""
    xmp = xmp[:MAX_TEXT_BYTES]
    source_type = DIGITAL_SOURCE_TYPE.search(xmp)
    if source_type:
        items.append(_item(AI_DECLARED, "XMP Iptc4xmpExt:DigitalSourceType: " +
                           DIGITAL_SOURCE_TYPES[source_type.group(1)]))
    tool = XMP_CREATOR_TOOL.search(xmp)
    if tool:
        name = (tool.group(1) or tool.group(2)).decode("utf-8", "replace")
        _software("XMP CreatorTool", name, items, report_other=True)


def _c2pa(store: bytes, where: str, items: list[dict]) -> None:
    """A C2PA manifest store (JUMBF): presence, claim generator, AI digital source type in its actions."""
    store = store[:MAX_C2PA_BYTES]
    if b"c2pa" not in store:
        return
    generator = _claim_generator(store)
    items.append(_item(C2PA, f"C2PA manifest ({where})" +
                       (f", claim generator: {generator}" if generator else "")))
    if generator:
        _software("C2PA claim generator", generator, items, report_other=False)
    source_type = DIGITAL_SOURCE_TYPE.search(store)
    if source_type:
        items.append(_item(AI_DECLARED, "C2PA action digitalSourceType: " +
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
    return _clean(data[start:start + length].decode("utf-8", "replace"))


def _name(raw: bytes) -> str:
    return raw[:79].decode("latin-1")


def _clean(text: str) -> str:
    """One printable line of at most DETAIL_CHARS characters."""
    text = " ".join("".join(c if c.isprintable() else " " for c in text[:4 * DETAIL_CHARS]).split())
    return text if len(text) <= DETAIL_CHARS else text[:DETAIL_CHARS - 1] + "…"


def _item(kind: str, detail: str) -> dict:
    return {"kind": kind, "detail": detail}
