"""The demo page in a real headless Chromium: upload a dataset image, see the verdict the model gives."""
import shutil
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from axe_support import axe_results, serious_violations, wording_problems
from edge_runtime import Detector, wording
from server import Config, create_app
from server_support import no_outside_network, sample_images

__all__ = ["no_outside_network"]

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


@pytest.fixture(scope="module")
def base_url():
    server = make_server("127.0.0.1", 0, create_app(Config(rate_limit="off")), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, base_url):
    page = browser.new_page(viewport={"width": 1000, "height": 800})
    page.console_errors = []
    page.on("console", lambda m: m.type == "error" and page.console_errors.append(m.text))
    page.on("pageerror", lambda e: page.console_errors.append(str(e)))
    page.outside_requests = []
    page.on("request", lambda r: r.url.startswith(base_url) or r.url.startswith("blob:")
            or page.outside_requests.append(r.url))
    page.goto(base_url + "/")
    yield page
    page.close()


@pytest.mark.parametrize("image", sample_images()[:2], ids=lambda p: p.suffix)
def test_upload_shows_the_verdict(page, image):
    page.set_input_files("#file-input", str(image))
    page.wait_for_selector("#result:not([hidden])", timeout=30_000)
    want = Detector(threads=1).check(image.read_bytes())
    verdict = page.locator("#verdict")
    assert verdict.get_attribute("data-label") == want.label
    assert verdict.inner_text() == wording.verdict_line(want.label, want.probability)
    assert page.inner_text("#probability-text") == wording.rules_line(want.threshold, want.unsure_band)
    assert page.inner_text("#caveat") == wording.CAVEAT
    rows = page.locator("#views tbody tr")
    assert rows.count() == len(want.view_probabilities)
    for i, (name, p) in enumerate(want.view_probabilities.items()):
        assert rows.nth(i).inner_text().split("\t")[0] == name
        assert rows.nth(i).inner_text().split("\t")[-1] == wording.score_percent(p)
    assert wording_problems(page.inner_text(".verdict-box")) == []
    bar = page.locator("#probability-bar").bounding_box()
    track = page.locator(".bar").bounding_box()
    assert bar["width"] / track["width"] == pytest.approx(want.probability, abs=0.02)
    assert page.locator("#preview").is_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"demo-page{image.suffix}.png"), full_page=True)
    assert page.console_errors == []  # no script errors, no Content-Security-Policy violations
    assert page.outside_requests == []  # works offline: nothing loaded from anywhere else


def test_page_with_a_result_is_accessible(page):
    """Keyboard reaches the file picker; with a result shown, axe-core finds no serious or critical violation in
    light or dark colours. Screenshots: test-artifacts/demo-page-result.png and demo-page-result-dark.png."""
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "drop-zone"
    page.emulate_media(reduced_motion="reduce")
    page.set_input_files("#file-input", str(sample_images()[0]))
    page.wait_for_selector("#result:not([hidden])", timeout=30_000)
    assert page.evaluate("() => document.getAnimations().length") == 0  # the result appears without motion
    ARTIFACTS.mkdir(exist_ok=True)
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        assert serious_violations(axe_results(page)) == [], f"{scheme} colours"
        page.screenshot(path=str(ARTIFACTS / f"demo-page-result{'-dark' if scheme == 'dark' else ''}.png"),
                        full_page=True)
    assert page.console_errors == []


def test_bad_file_shows_the_reason(page, tmp_path):
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("just some text")
    page.set_input_files("#file-input", str(not_an_image))
    error = page.locator("#error")
    error.wait_for(state="visible", timeout=30_000)
    assert "422" in error.inner_text() and "not an image" in error.inner_text()
    assert page.locator("#result").is_hidden()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "demo-page-error.png"))


def test_refused_url_shows_the_reason(page):
    page.fill("#url-input", "http://169.254.169.254/latest/meta-data/")
    page.click("#url-form button")
    error = page.locator("#error")
    error.wait_for(state="visible", timeout=30_000)
    assert "403" in error.inner_text() and "not a public" in error.inner_text()


def test_evidence_and_heatmap_on_request(page, manifest_rows):
    """A NovelAI PNG: the page lists its metadata evidence, then shows the heatmap overlay on request.
    Screenshot: test-artifacts/demo-page-evidence-heatmap.png."""
    from conftest import pick
    novelai = pick(manifest_rows, "tsunamori-novelai", 1)[0]
    page.set_input_files("#file-input", str(novelai))
    page.wait_for_selector("#result:not([hidden])", timeout=30_000)
    assert page.locator("#verdict").get_attribute("data-label") == "ai"
    evidence = page.inner_text("#evidence-list")
    assert "Labelled AI because the file's metadata says so" in evidence
    assert "Names an AI generator: PNG text 'Software': NovelAI" in evidence
    original = page.get_attribute("#preview", "src")
    page.click("#explain-button")
    page.wait_for_function("() => document.querySelector('#preview').src.startsWith('data:image/jpeg')",
                           timeout=60_000)
    page.wait_for_function("() => document.querySelector('#preview').complete")
    assert page.evaluate("() => document.querySelector('#preview').naturalWidth") == 512
    assert "windows" in page.inner_text("#explain-text")
    assert page.inner_text("#explain-button") == "Hide the heatmap"
    assert serious_violations(axe_results(page)) == []
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "demo-page-evidence-heatmap.png"), full_page=True)
    page.click("#explain-button")
    assert page.get_attribute("#preview", "src") == original
    page.uncheck("#metadata-input")  # the same bytes again (under another name, so the picker sees a change)
    page.set_input_files("#file-input", files=[{"name": "again.png", "mimeType": "image/png",
                                                "buffer": novelai.read_bytes()}])
    page.wait_for_selector("#evidence-list li[data-kind='generator']")
    page.wait_for_function("() => !document.querySelector('#evidence-list').innerText.includes('Labelled AI')")
    assert page.console_errors == [] and page.outside_requests == []
