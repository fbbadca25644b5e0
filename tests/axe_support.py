"""Accessibility checks for the browser tests: axe-core (npm, pinned in extension/package.json) run in a page (or,
to reach the badges' closed shadow roots, in the extension's content script world), and the wording rules every
number people read must follow."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

AXE_JS = Path(__file__).resolve().parents[1] / "extension" / "node_modules" / "axe-core" / "axe.min.js"
# A percent that claims certainty, or a raw probability with more digits than it carries.
CERTAINTY = re.compile(r"(?<![\d.<>])(100|0)(\.0+)?\s?%")
RAW_FLOAT = re.compile(r"\b0\.\d{3,}|\b\d{1,3}\.\d{2,}\s?%")


AXE_RUN = """async () => {
    const result = await axe.run(document, {resultTypes: ["violations", "passes"]});
    const brief = (rules) => rules.map(rule => ({id: rule.id, impact: rule.impact, help: rule.help,
        targets: rule.nodes.map(node => JSON.stringify(node.target))}));
    return {violations: brief(result.violations), passes: brief(result.passes)};
}"""

# axe walks shadow roots through element.shadowRoot, which is null for closed ones. In the content script's world
# (and only there, for the run) the getter answers with chrome.dom.openOrClosedShadowRoot instead.
AXE_RUN_WITH_CLOSED_ROOTS = f"""async () => {{
    const getter = Object.getOwnPropertyDescriptor(Element.prototype, "shadowRoot");
    Object.defineProperty(Element.prototype, "shadowRoot", {{configurable: true,
        get() {{ return chrome.dom.openOrClosedShadowRoot(this); }}}});
    try {{
        return await ({AXE_RUN})();
    }} finally {{
        Object.defineProperty(Element.prototype, "shadowRoot", getter);
    }}
}}"""


def axe_source() -> str:
    if not AXE_JS.exists():
        pytest.fail(f"{AXE_JS} is missing: run `npm ci` in extension/ (make test does)")
    return AXE_JS.read_text()


def axe_results(page) -> dict:
    """axe-core's violations and passes for the page as it is now (WCAG 2.x A and AA rules and best practices).

    Injected with page.evaluate, which the pages' Content-Security-Policy does not block. Open shadow roots are
    checked too; for the badges' closed ones, use axe_results_with_badges."""
    page.evaluate(axe_source())
    return page.evaluate(AXE_RUN)


def axe_results_with_badges(world) -> dict:
    """axe_results for a page with the extension's badges, run in the content script's world (a
    shadow_support.ExtensionWorld) so that it checks inside their closed shadow roots as well as the page."""
    world.run(axe_source())
    return world.evaluate(AXE_RUN_WITH_CLOSED_ROOTS)


def serious_violations(results: dict) -> list[dict]:
    """The serious and critical violations, each with the elements it was found on."""
    return [v for v in results["violations"] if v["impact"] in ("serious", "critical")]


def wording_problems(text: str) -> list[str]:
    """The places in `text` that break the wording rules: "100%"/"0%", or raw probabilities."""
    return [m.group(0) for m in CERTAINTY.finditer(text)] + [m.group(0) for m in RAW_FLOAT.finditer(text)]


def contrast_ratio(foreground: str, background: str) -> float:
    """WCAG contrast ratio of two opaque CSS colours given as computed styles ("rgb(r, g, b)")."""
    def luminance(colour: str) -> float:
        channels = [int(c) / 255 for c in re.findall(r"\d+", colour)[:3]]
        r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
        return 0.2126 * r + 0.7152 * g + 0.0722 * b
    light, dark = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (light + 0.05) / (dark + 0.05)
