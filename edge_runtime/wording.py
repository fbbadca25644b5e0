"""What people read about a verdict: its words and numbers, for the CLI table and anything else shown to a person.

The Python twin of extension/src/lib/wording.js (tests/test_wording.py holds both to the same strings). The one
number shown is the AI score: the model's probability that an image is AI-generated, as a whole percent that
never reads "100%" or "0%", because no detector is certain.
"""
from __future__ import annotations

import math

VERDICT_WORDS = {
    "ai": "likely AI-generated",
    "human": "no clear sign of AI",
    "unsure": "unsure: the model cannot tell",
}
SHORT_LABELS = {"ai": "AI", "human": "Human", "unsure": "Unsure"}
CAVEAT = ("The AI score is a model's estimate from the pixels, not proof: it can be wrong, most of all on styles "
          "and generators it was not trained on.")


def score_percent(p: float) -> str:
    """A probability as a whole percent: "93%", never "100%" or "0%" (">99%", "<1%")."""
    whole = math.floor(p * 100 + 0.5)
    if whole >= 100:
        return ">99%"
    if whole <= 0:
        return "<1%"
    return f"{whole}%"


def cutoff_percent(value: float) -> str:
    """A threshold or band edge as a percent with at most one decimal and no trailing zero: 0.5216 -> "52.2%"."""
    tenths = math.floor(value * 1000 + 0.5)
    return f"{tenths // 10}%" if tenths % 10 == 0 else f"{tenths / 10:.1f}%"


def verdict_sentence(label: str) -> str:
    """The verdict as a sentence start: "Likely AI-generated"."""
    words = VERDICT_WORDS[label]
    return words[0].upper() + words[1:]


def badge_text(label: str, p: float) -> str:
    """The badge's text: the short label, then the AI score ("AI 93%", "Human · AI score 8%")."""
    if label == "ai":
        return f"AI {score_percent(p)}"
    return f"{SHORT_LABELS[label]} · AI score {score_percent(p)}"


def verdict_line(label: str, p: float) -> str:
    """The verdict with its number: "Likely AI-generated (AI score 93%)"."""
    return f"{verdict_sentence(label)} (AI score {score_percent(p)})"


def rules_line(threshold: float, unsure_band: tuple[float, float] | None) -> str:
    """How the label follows from the score: "Threshold 52.2%; unsure between 37.2% and 67.2%"."""
    rule = f"Threshold {cutoff_percent(threshold)}"
    if not unsure_band or unsure_band[0] >= unsure_band[1]:
        return rule
    return f"{rule}; unsure between {cutoff_percent(unsure_band[0])} and {cutoff_percent(unsure_band[1])}"
