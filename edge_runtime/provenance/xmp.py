"""XMP packets: IPTC DigitalSourceType and xmp:CreatorTool."""
from __future__ import annotations

import re

from . import rules
from .rules import AI_DECLARED, MAX_TEXT_BYTES

DIGITAL_SOURCE_TYPES = {
    b"compositeWithTrainedAlgorithmicMedia":
        "compositeWithTrainedAlgorithmicMedia (contains output of a generative model)",
    b"trainedAlgorithmicMedia": "trainedAlgorithmicMedia (made by a generative model)",
}
DIGITAL_SOURCE_TYPE = re.compile(rb"digitalsourcetype/(compositeWithTrainedAlgorithmicMedia|trainedAlgorithmicMedia)\b")
CREATOR_TOOL = re.compile(rb"CreatorTool(?:=\"([^\"<]{1,200})\"|>([^<]{1,200})<)")


def judge(packet: bytes, items: list[dict]) -> None:
    """Judge one XMP packet (its first MAX_TEXT_BYTES)."""
    packet = packet[:MAX_TEXT_BYTES]
    source_type = DIGITAL_SOURCE_TYPE.search(packet)
    if source_type:
        items.append(rules.item(AI_DECLARED, "XMP Iptc4xmpExt:DigitalSourceType: " +
                                DIGITAL_SOURCE_TYPES[source_type.group(1)]))
    tool = CREATOR_TOOL.search(packet)
    if tool:
        name = (tool.group(1) or tool.group(2)).decode("utf-8", "replace")
        rules.software("XMP CreatorTool", name, items, report_other=True)
