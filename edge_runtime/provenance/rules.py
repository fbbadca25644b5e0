"""What metadata text means: the rules that turn a field's value into evidence items, shared by every container.

Each rule runs in time linear in its (capped) input: `str.find` of literal markers (checked to start a word,
as `\\b` would), and regexes that start with a literal or see at most DETAIL_CHARS characters, without
unbounded repetition that could backtrack.
`has_generation_parameters` replaces the regex `\\bSteps: \\d+.*\\bSampler: `, which is quadratic on
"Steps: 1111..." without a sampler (35 s for one 64 KiB EXIF value, the GIL held all along).
"""
from __future__ import annotations

import json
import re

GENERATOR = "generator"
AI_DECLARED = "ai-declared"
C2PA = "c2pa"
SOFTWARE = "software"
AI_KINDS = (GENERATOR, AI_DECLARED)

MAX_SEGMENTS = 4096  # chunks / segments walked per file
MAX_BLOCKS = 32  # metadata blocks (text chunks, EXIF / XMP / C2PA blocks) judged per file; the rest are skipped
MAX_TEXT_BYTES = 64 * 1024  # bytes of one text value looked at (after inflating)
MAX_CHUNK_BYTES = 1024 * 1024  # bytes of one metadata chunk copied out of the file (compressed or not)
MAX_ITEMS = 16  # evidence items kept per file
DETAIL_CHARS = 160

# Names of image generators and of the apps that run them, as they appear in Software / CreatorTool /
# claim-generator fields (lower case; matched on word boundaries).
GENERATOR_NAMES = re.compile(
    r"\b(novelai|stable[ -]?diffusion|sdxl|automatic1111|stable-diffusion-webui|comfyui|invokeai|fooocus|"
    r"swarmui|sd\.next|draw things|diffusionbee|midjourney|nijijourney|niji ?journey|dall[-·]?e|"
    r"openai|chatgpt|gpt-4o|firefly|imagen|ideogram|leonardo\.ai|flux\.1|bing image creator|"
    r"dreamstudio|nightcafe|tensor\.art|civitai|pixai|holara|animagine)\b")
MODEL_CHARS = 80  # characters of an A1111 "Model: " name shown


def item(kind: str, detail: str) -> dict:
    return {"kind": kind, "detail": detail}


def text(key: str, value: str, items: list[dict]) -> None:
    """Judge one PNG text chunk (a blank one says nothing)."""
    value = value[:MAX_TEXT_BYTES]
    if not clean(value):
        return
    where = f"PNG text '{key}'"
    lowered = key.lower()
    if lowered == "parameters":
        tool = "SwarmUI" if "sui_image_params" in value else "A1111/Forge-style"
        items.append(item(GENERATOR, f"{where} ({tool} generation parameters): {summary(value)}"))
    elif lowered in ("prompt", "workflow") and ('"class_type"' in value or '"nodes"' in value):
        items.append(item(GENERATOR, f"{where} (ComfyUI {lowered} graph)"))
    elif lowered in ("invokeai_metadata", "invokeai_graph", "sd-metadata", "dream"):
        items.append(item(GENERATOR, f"{where} (InvokeAI generation metadata): {summary(value)}"))
    elif lowered == "comment" and _novelai_settings(value):
        items.append(item(GENERATOR, f"{where} (NovelAI-style generation settings): {summary(value)}"))
    elif lowered in ("software", "source", "generator", "creator", "author", "title"):
        software(where, value, items, report_other=lowered == "software")


def parameters_or_name(where: str, value: str, items: list[dict]) -> None:
    """A free-text field: generation parameters (A1111 writes them to UserComment), or a generator's name."""
    value = value[:MAX_TEXT_BYTES]
    if has_generation_parameters(value):
        items.append(item(GENERATOR, f"{where} (A1111/Forge-style generation parameters): {summary(value)}"))
    else:
        software(where, value, items, report_other=False)


def has_generation_parameters(value: str) -> bool:
    """A1111/Forge settings: "Steps: <digits>", then "Sampler: " somewhere after. Linear: the first "Steps: <digit>"
    leaves the most room after it, so one forward search for each marker decides."""
    steps = find_word(value, "Steps: ")
    while steps >= 0 and not "0" <= value[steps + 7:steps + 8] <= "9":
        steps = find_word(value, "Steps: ", steps + 1)
    return steps >= 0 and find_word(value, "Sampler: ", steps + 8) >= 0


def find_word(value: str, marker: str, start: int = 0) -> int:
    """Index of the first `marker` at or after `start` that starts a word (no ASCII letter, digit or _ before it,
    like the regex `\\b`), or -1. Linear: each search goes on from the last hit."""
    at = value.find(marker, start)
    while at > 0 and _word_char(value[at - 1]):
        at = value.find(marker, at + 1)
    return at


def _word_char(char: str) -> bool:
    return char.isascii() and (char.isalnum() or char == "_")


def software(where: str, value: str, items: list[dict], report_other: bool) -> None:
    """A name field: `generator` when it names one; else `software` if `report_other`."""
    value = clean(value)
    if not value:
        return
    if GENERATOR_NAMES.search(value.lower().replace("_", " ")):  # C2PA writes names like Adobe_Firefly
        items.append(item(GENERATOR, f"{where}: {value}"))
    elif report_other:
        items.append(item(SOFTWARE, f"{where}: {value}"))


def summary(value: str) -> str:
    """The short part of a generation-parameters text worth showing: model and settings, else its start."""
    value = value[:MAX_TEXT_BYTES]
    model = _model_name(value)
    settings = value.find("Steps: ")
    if settings >= 0:
        summary = value[settings:]
        return clean(f"model {model}; {summary}" if model else summary)
    return clean(value)


def _model_name(value: str) -> str:
    """The first non-empty A1111 "Model: <name>" (up to a comma or line end, at most MODEL_CHARS), or ""."""
    at = find_word(value, "Model: ")
    while at >= 0:
        name = value[at + 7:at + 7 + MODEL_CHARS].split(",", 1)[0].split("\n", 1)[0]
        if name:
            return name
        at = find_word(value, "Model: ", at + 1)
    return ""


def clean(text: str) -> str:
    """One printable line of at most DETAIL_CHARS characters."""
    text = text[:4 * DETAIL_CHARS]
    if not text.isprintable():
        text = "".join(c if c.isprintable() else " " for c in text)
    text = " ".join(text.split())
    return text if len(text) <= DETAIL_CHARS else text[:DETAIL_CHARS - 1] + "…"


def _novelai_settings(value: str) -> bool:
    try:
        settings = json.loads(value)
    except (ValueError, RecursionError):
        return False
    return isinstance(settings, dict) and "steps" in settings and ("sampler" in settings or "uc" in settings)
