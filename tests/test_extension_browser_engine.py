"""The extension's in-browser engine (LiteRT.js, WASM) in Debian's headless Chromium, with no relay running.

Parity: for 24 real dataset images (both classes; JPEG, PNG and WebP; the smallest, the largest and two between
of each class and format) the engine's P(ai) is within PARITY_TOLERANCE of `python -m edge_runtime --json` on the
same bundled model, and every label is the same, for both models the extension bundles (default and paper). End to
end: the context-menu check, the error states and page scan work with the default setting ("in this browser") while the configured relay port has nothing listening.
Expected verdicts are the Python runtime's own answers for the same files, asked at test time.
"""
from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image
from playwright.sync_api import sync_playwright

from edge_runtime import preprocess
from edge_runtime.detector import decide

from shadow_support import extension_world
from test_extension_e2e import (ARTIFACTS, CHROMIUM_ARGS, EXTENSION, REPO, badge_host, badges,  # noqa: F401
                                chromium_path, context_menu_check, free_port, open_details, open_page, site,
                                wait_for_panel_text, wait_for_scan)

pytestmark = pytest.mark.browser

PARITY_TOLERANCE = 0.02
FORMATS = ("jpg", "png", "webp")
# Far from the threshold, the unsure band and the escalation band: images whose label cannot depend on the TTA mode.
CONFIDENT_MARGIN = 0.1  # P at least this far from the model's threshold: no rounding can flip the label


def parity_rows(manifest_rows: list[dict]) -> list[dict]:
    """Per class and format, the smallest, the largest and two images between them by pixel count."""
    picked = []
    for label in ("ai", "human"):
        for fmt in FORMATS:
            rows = sorted((r for r in manifest_rows if r["label"] == label and r["format"] == fmt),
                          key=lambda r: (int(r["width"]) * int(r["height"]), r["sha256"]))
            n = len(rows)
            picked += [rows[i] for i in sorted({0, n // 3, 2 * n // 3, n - 1})]
    return picked


@pytest.fixture(scope="module")
def python_verdicts(manifest_rows, data_root) -> list[tuple[dict, dict]]:
    """(manifest row, `python -m edge_runtime --json` result) for the parity images."""
    return runtime_verdicts(manifest_rows, data_root, "default")


def runtime_verdicts(manifest_rows, data_root, model: str) -> list[tuple[dict, dict]]:
    """(manifest row, `python -m edge_runtime --json --model MODEL` result) for the parity images."""
    rows = parity_rows(manifest_rows)
    paths = [str(data_root / row["path"]) for row in rows]
    run = subprocess.run([sys.executable, "-m", "edge_runtime", "--json", "--model", model, *paths], cwd=REPO,
                         capture_output=True, text=True, timeout=600)
    results = {r["path"]: r for r in map(json.loads, filter(None, run.stdout.splitlines()))}
    assert set(results) == set(paths), run.stderr[-2000:]
    assert all(result["ok"] for result in results.values()), run.stdout[-2000:]
    return [(row, results[path]) for row, path in zip(rows, paths)]


@pytest.fixture(scope="module")
def engine_browser(chromium_path, tmp_path_factory):
    """A fresh Chromium profile with the extension on its default engine, its relay URL on a port where nothing
    listens; yields (context, worker)."""
    dead_relay = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{dead_relay}/healthz", timeout=2)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("profile")), executable_path=chromium_path, headless=False,
            args=[*CHROMIUM_ARGS, f"--disable-extensions-except={EXTENSION}", f"--load-extension={EXTENSION}"],
            viewport={"width": 1400, "height": 900})
        try:
            worker = context.service_workers[0] if context.service_workers \
                else context.wait_for_event("serviceworker", timeout=30_000)
            worker.evaluate("url => chrome.storage.local.set({settings: {relayUrl: url}})", dead_relay)
            yield context, worker
        finally:
            context.close()


def engine_check(page, data: bytes, tta: str, model: str = "default") -> dict:
    """The engine's answer for image bytes, asked in an extension page that loads engine/host.js."""
    return page.evaluate("""async ([data, tta, model]) => {
        const host = await import('./host.js');
        const bytes = Uint8Array.from(atob(data), c => c.charCodeAt(0));
        return host.answerEngineRequest({type: 'check', bytes, tta, model});
    }""", [base64.b64encode(data).decode(), tta, model])


@pytest.mark.parametrize("model", ["default", "paper"])  # the extension's model setting, both bundled models
def test_browser_engine_matches_the_python_runtime(engine_browser, python_verdicts, manifest_rows, data_root, model):
    context, worker = engine_browser
    page = context.new_page()
    page.goto(worker.url.replace("background.js", "engine/offscreen.html"))
    verdicts = python_verdicts if model == "default" else runtime_verdicts(manifest_rows, data_root, model)
    rows = []
    for row, expected in verdicts:
        answer = engine_check(page, (data_root / row["path"]).read_bytes(), expected["tta"], model)
        assert "result" in answer, f"{row['path']}: {answer}"
        got = answer["result"]
        rows.append({"path": row["path"], "label": row["label"], "format": row["format"], "size": f"{row['width']}x{row['height']}",
                     "python": expected["probability"], "browser": got["probability"],
                     "diff": abs(got["probability"] - expected["probability"]),
                     # the model's label: the engine leaves the metadata rule to the checker (lib/checker.js)
                     "python_label": decide(expected["probability"], expected["threshold"], expected["unsure_band"]),
                     "browser_label": got["label"],
                     "views_run": [got["views_run"], expected.get("views_run")]})
        assert got["model_version"] == expected["model_version"], row["path"]
    page.close()
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"browser-engine-parity-{model}.json").write_text(json.dumps(rows, indent=1))
    diffs = [r["diff"] for r in rows]
    print(f"\n{model}: parity on {len(rows)} images: max |dP| {max(diffs):.4f}, mean {sum(diffs) / len(diffs):.4f}, "
          f"labels equal {sum(r['python_label'] == r['browser_label'] for r in rows)}/{len(rows)}")
    assert len(rows) >= 20
    assert {(r["label"], r["format"]) for r in rows} == {(label, f) for label in ("ai", "human") for f in FORMATS}
    assert [r for r in rows if r["diff"] > PARITY_TOLERANCE] == []
    assert [r for r in rows if r["python_label"] != r["browser_label"]] == []



def test_large_images_take_the_runtimes_shrink_path(engine_browser, python_verdicts, data_root, tmp_path):
    """Images over twice the input size (none in the dataset) are shrunk before the resize: PNGs by a box mean
    exactly as Pillow's reduce, JPEGs by Pillow's reduced-scale decoding, which the browser approximates."""
    context, worker = engine_browser
    page = context.new_page()
    page.goto(worker.url.replace("background.js", "engine/offscreen.html"))
    largest = [row for row, _ in python_verdicts if row["format"] in ("jpg", "webp")][-1::-4][:2]
    for row in largest:
        source = Image.open(data_root / row["path"]).convert("RGB")
        big = source.resize((source.width * 5 // 2, source.height * 5 // 2), Image.LANCZOS)  # > 2 x 448 px a side
        for fmt, tolerance in (("png", (0, 0)), ("jpg", (0.5, 8))):
            path = tmp_path / f"big-{Path(row['path']).stem}.{fmt}"
            big.save(path, quality=92) if fmt == "jpg" else big.save(path)
            got = np.frombuffer(base64.b64decode(page.evaluate("""async (data) => {
                const runtime = await import('./runtime.js'), pixels = await import('../lib/pixels.js');
                const image = await runtime.decode(Uint8Array.from(atob(data), c => c.charCodeAt(0)), 224);
                let text = ''; for (const b of pixels.resizeBilinear(image, 224, 224).data) text += String.fromCharCode(b);
                return btoa(text); }""", base64.b64encode(path.read_bytes()).decode())), np.uint8).reshape(224, 224, 3)
            expected = preprocess.resize(preprocess.load_image(path))
            difference = np.abs(got.astype(int) - expected)
            assert difference.mean() <= tolerance[0] and difference.max() <= tolerance[1], \
                f"{path.name} {big.size}: mean {difference.mean():.3f} max {difference.max()} levels"
    page.close()

@pytest.fixture(scope="module")
def confident(python_verdicts, site, data_root) -> list[dict]:
    """Parity images the Python runtime judges confidently, alternately AI and human, copied to the test site.

    Only images page scan looks at: at least 128 px a side (it skips pictures under 64 px, shown or natural).
    """
    by_label = {label: [(row, v) for row, v in python_verdicts if v["label"] == label
                        and abs(v["probability"] - v["threshold"]) >= CONFIDENT_MARGIN
                        and min(int(row["width"]), int(row["height"])) >= 128] for label in ("ai", "human")}
    picked = []
    for pair in zip(by_label["ai"][:3], by_label["human"][:3]):
        for row, verdict in pair:
            name = f"engine-{Path(row['path']).name}"
            site.add_image(data_root / row["path"], name)
            picked.append({"name": name, "url": f"{site.url}/{name}", "row": row, "verdict": verdict})
    assert len(picked) == 6, f"too few confident verdicts per class: {[(k, len(v)) for k, v in by_label.items()]}"
    return picked


def test_context_menu_check_runs_in_the_browser_without_a_relay(engine_browser, site, confident):
    context, worker = engine_browser
    ai, human = confident[0], confident[1]
    page_url = site.add_page("engine-context.html", f"""
        <div class="gallery"><img src="{ai['name']}" alt="first"><img src="{human['name']}" alt="second"></div>""")
    page, tab_id = open_page(context, worker, page_url)
    for image in (ai, human):
        badge = context_menu_check(worker, tab_id, image["url"])
        assert badge["state"] == image["verdict"]["label"], image["name"]
        assert badge["details"]["engine"] == "browser"
        assert badge["details"]["probability"] == pytest.approx(image["verdict"]["probability"], abs=PARITY_TOLERANCE)
        assert badge["details"]["modelVersion"] == image["verdict"]["model_version"]
        assert badges(page)[image["url"]]["state"] == image["verdict"]["label"]
    assert "checked in this browser" in open_details(page, ai["url"])

    popup = context.new_page()
    popup.goto(worker.url.replace("background.js", "popup/popup.html"))
    popup.locator("#engine[data-state='ok']").wait_for()
    assert "checked in this browser" in popup.inner_text("#engine")
    assert ai["verdict"]["model_version"] in popup.inner_text("#engine")
    assert popup.locator("#relay").get_attribute("data-state") == "off"
    popup.close()
    page.close()


def test_bad_images_get_the_same_states_as_with_the_relay(engine_browser, site, confident, data_root):
    context, worker = engine_browser
    source = Image.open(data_root / confident[0]["row"]["path"]).convert("RGB")
    source.resize((16, 16)).save(site.root / "engine-icon.png")
    source.resize((2700, 2700)).save(site.root / "engine-huge.bmp")  # 21.9 MB: over the relay's 20 MB body limit
    (site.root / "engine-broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG " * 8)
    page_url = site.add_page("engine-errors.html", """<div class="gallery">
        <img src="engine-icon.png" style="width:16px;height:16px" alt=""><img src="engine-broken.jpg" width="200" height="200" alt="">
        <img src="engine-huge.bmp" width="200" height="200" alt=""></div>""")
    page, tab_id = open_page(context, worker, page_url)
    expected = {"engine-icon.png": ("too-small", "Too small"), "engine-broken.jpg": ("unreadable", "Unreadable image"),
                "engine-huge.bmp": ("too-large", "Too large")}
    for name, (state, text) in expected.items():
        assert context_menu_check(worker, tab_id, f"{site.url}/{name}")["state"] == state, name
        assert badges(page)[f"{site.url}/{name}"]["text"] == text
    page.close()


def test_page_scan_in_the_browser_flags_what_the_python_runtime_judges_ai(engine_browser, site, confident):
    context, worker = engine_browser
    tags = "".join(f'<img src="{image["name"]}" alt="">' for image in confident)
    page_url = site.add_page("engine-scan.html", f'<div class="gallery">{tags}</div>')
    page, tab_id = open_page(context, worker, page_url)
    popup = context.new_page()
    popup.goto(worker.url.replace("background.js", "popup/popup.html"))
    answer = popup.evaluate("([pageUrl, tabId]) => chrome.runtime.sendMessage("
                            "{type: 'set-site-scan', pageUrl, enabled: true, tabId})", [page_url, tab_id])
    assert answer == {"sites": ["http://127.0.0.1/*"]}
    popup.close()

    stats = wait_for_scan(worker, tab_id, len(confident), "the images, in the browser engine")
    shown = badges(page)
    for image in confident:
        flagged = image["verdict"]["label"] == "ai"
        assert (image["url"] in shown) == flagged, f"{image['name']}: Python said {image['verdict']['label']}"
    assert stats["flagged"] == sum(image["verdict"]["label"] == "ai" for image in confident)
    assert stats["errors"] == 0
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "extension-browser-engine-scan.png"))
    page.close()


def engine_explain(page, data: bytes) -> dict:
    """The engine's window map for image bytes, asked in an extension page that loads engine/host.js."""
    return page.evaluate("""async (data) => {
        const host = await import('./host.js');
        const bytes = Uint8Array.from(atob(data), c => c.charCodeAt(0));
        return host.answerEngineRequest({type: 'explain', bytes});
    }""", base64.b64encode(data).decode())


def test_browser_engine_explain_matches_the_python_map(engine_browser, confident, data_root):
    """The in-browser window map equals edge_runtime's Detector.explain cell by cell on real images."""
    from edge_runtime import Detector
    context, worker = engine_browser
    page = context.new_page()
    page.goto(worker.url.replace("background.js", "engine/offscreen.html"))
    detector = Detector(threads=2)
    for image in confident[:2]:
        path = data_root / image["row"]["path"]
        answer = engine_explain(page, path.read_bytes())
        assert "explanation" in answer, f"{image['name']}: {answer}"
        got, want = answer["explanation"], detector.explain(path)
        assert got["grid_size"] == len(want.grid) and got["invokes"] == len(want.grid) ** 2 + 1
        assert got["probability"] == pytest.approx(want.probability, abs=PARITY_TOLERANCE)
        for got_row, want_row in zip(got["grid"], want.grid):
            assert got_row == pytest.approx(want_row, abs=PARITY_TOLERANCE), image["name"]
    page.close()


def test_badge_details_show_metadata_evidence_and_the_heatmap_on_request(engine_browser, site, data_root,
                                                                         manifest_rows):
    """A NovelAI PNG checked in the browser: labelled AI by its metadata, the evidence listed in the details
    panel, and the heatmap drawn over the image on request. Screenshot: extension-badge-evidence-heatmap.png."""
    from conftest import pick
    context, worker = engine_browser
    novelai = pick(manifest_rows, "tsunamori-novelai", 1)[0]
    site.add_image(novelai, "novelai.png")
    page, tab_id = open_page(context, worker, site.add_page("engine-evidence.html", """
        <div class="gallery"><img src="novelai.png" alt="a NovelAI render"></div>"""))
    badge = context_menu_check(worker, tab_id, f"{site.url}/novelai.png")
    assert badge["state"] == "ai" and badge["details"]["reason"] == "metadata"
    assert {"kind": "generator", "detail": "PNG text 'Software': NovelAI"} in badge["details"]["evidence"]
    url = f"{site.url}/novelai.png"
    text = open_details(page, url)
    assert "Labelled AI because the file's metadata says so" in text
    assert "Names an AI generator: PNG text 'Software': NovelAI" in text
    extension_world(page).click(badge_host(url), ".panel button", "Show where the model sees AI")
    wait_for_panel_text(page, url, "windows", timeout=120)
    size = extension_world(page).shadows(badge_host(url), """([root]) => {
        const canvas = root.querySelector('.panel canvas.heatmap'); return [canvas.width, canvas.height]; }""")
    assert size[0] > 0 and abs(size[0] / size[1] - 512 / 768) < 0.02
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "extension-badge-evidence-heatmap.png"))
    page.close()


def test_the_model_setting_switches_the_in_browser_model_and_forgets_cached_verdicts(engine_browser, site, confident,
                                                                                      manifest_rows, data_root):
    """Settings {model: "paper"}: the context-menu check answers with the paper model (its version, the Python
    runtime's P for `--model paper`), not with the default's cached verdict for the same image; back to default."""
    context, worker = engine_browser
    image = confident[0]
    paper = dict((row["path"], verdict) for row, verdict in runtime_verdicts(manifest_rows, data_root, "paper"))
    expected = paper[image["row"]["path"]]
    page_url = site.add_page("engine-model.html", f'<div class="gallery"><img src="{image["name"]}" alt=""></div>')
    page, tab_id = open_page(context, worker, page_url)
    relay_url = worker.evaluate("async () => (await chrome.storage.local.get('settings')).settings.relayUrl")
    default = context_menu_check(worker, tab_id, image["url"])
    assert default["details"]["modelVersion"] == image["verdict"]["model_version"]
    try:
        worker.evaluate("url => chrome.storage.local.set({settings: {relayUrl: url, model: 'paper'}})", relay_url)
        badge = context_menu_check(worker, tab_id, image["url"])
        assert badge["details"]["modelVersion"] == expected["model_version"] != default["details"]["modelVersion"]
        assert badge["details"]["engine"] == "browser"
        assert badge["details"]["probability"] == pytest.approx(expected["probability"], abs=PARITY_TOLERANCE)
    finally:
        worker.evaluate("url => chrome.storage.local.set({settings: {relayUrl: url}})", relay_url)
    assert context_menu_check(worker, tab_id, image["url"])["details"]["modelVersion"] == \
        image["verdict"]["model_version"]
    page.close()
