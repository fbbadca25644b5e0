"""The Python wording (edge_runtime/wording.py) gives the same strings as the extension's (wording.js), which
the demo page serves a copy of; and the strings follow the rules people read them by."""
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from edge_runtime import wording

REPO = Path(__file__).resolve().parents[1]
WORDING_JS = REPO / "extension" / "src" / "lib" / "wording.js"
PROBABILITIES = [i / 1000 for i in range(1001)] + [0.0049, 0.005, 0.9949, 0.995, 0.521615743637085]
BANDS = [None, (0.5, 0.5), (0.37161574363708494, 0.671615743637085), (0.25, 0.75)]
NODE_SCRIPT = """
const w = await import(process.argv[1]);
const ps = JSON.parse(process.argv[2]), bands = JSON.parse(process.argv[3]);
console.log(JSON.stringify({
  score: ps.map(w.scorePercent),
  cutoff: ps.map(w.cutoffPercent),
  badge: ["ai", "human", "unsure"].map((label) => ps.map((p) => w.badgeText(label, p))),
  verdict: ["ai", "human", "unsure"].map((label) => ps.map((p) => w.verdictLine(label, p))),
  rules: bands.map((band) => w.rulesLine(0.521615743637085, band)),
  words: w.VERDICT_WORDS, caveat: w.CAVEAT,
}));
"""


@pytest.fixture(scope="module")
def js():
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is missing: apt-get install -y nodejs (make test-deps does)")
    run = subprocess.run([node, "--input-type=module", "-e", NODE_SCRIPT, WORDING_JS.as_uri(),
                          json.dumps(PROBABILITIES), json.dumps(BANDS)],
                         capture_output=True, text=True, check=True, timeout=60)
    return json.loads(run.stdout)


def test_python_and_javascript_give_the_same_strings(js):
    assert js["score"] == [wording.score_percent(p) for p in PROBABILITIES]
    assert js["cutoff"] == [wording.cutoff_percent(p) for p in PROBABILITIES]
    for i, label in enumerate(("ai", "human", "unsure")):
        assert js["badge"][i] == [wording.badge_text(label, p) for p in PROBABILITIES]
        assert js["verdict"][i] == [wording.verdict_line(label, p) for p in PROBABILITIES]
    assert js["rules"] == [wording.rules_line(0.521615743637085, band) for band in BANDS]
    assert js["words"] == wording.VERDICT_WORDS
    assert js["caveat"] == wording.CAVEAT


def test_scores_are_whole_percents_that_never_claim_certainty():
    assert [wording.score_percent(p) for p in (0, 0.004, 0.005, 0.5, 0.934, 0.994, 0.995, 0.996, 1)] == \
        ["<1%", "<1%", "1%", "50%", "93%", "99%", ">99%", ">99%", ">99%"]
    assert all(re.fullmatch(r"<1%|>99%|[1-9]\d?%", wording.score_percent(p)) for p in PROBABILITIES)


def test_cutoffs_keep_at_most_one_decimal():
    assert wording.cutoff_percent(0.521615743637085) == "52.2%"
    assert wording.cutoff_percent(0.55) == "55%"
    assert wording.rules_line(0.521615743637085, (0.37161574363708494, 0.671615743637085)) == \
        "Threshold 52.2%; unsure between 37.2% and 67.2%"
    assert wording.rules_line(0.5, (0.5, 0.5)) == "Threshold 50%"
