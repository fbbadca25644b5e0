"""The browser extension end to end: Debian's Chromium (headless, driven by Playwright) with the unpacked extension,
the real relay with the bundled model on a loopback port, and a local test page of real dataset images.

Every expected verdict is the relay's own answer for the same bytes, asked directly: the test checks the extension,
not the model. The test page is served from 127.0.0.1, which the extension's relay host permission
(http://127.0.0.1/*, any port) already covers, so page scan needs no permission prompt; it is turned on with the
message the popup sends after `permissions.request`. Artifacts (a screenshot of the scanned page) go to
test-artifacts/.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import html
import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from PIL import Image
from playwright.sync_api import expect, sync_playwright

from axe_support import axe_results, axe_results_with_badges, contrast_ratio, serious_violations, wording_problems
from edge_runtime import wording
from shadow_support import extension_world

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
EXTENSION = REPO / "extension" / "src"
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# Keep Chromium off the network: no background services, no QUIC, no first-run pages.
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-default-apps", "--metrics-recording-only", "--no-default-browser-check"]
PAGE_IMAGES = 6  # at least this many dataset images on the test pages, some the relay flags and some it does not
TIMEOUT_S = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition, what: str, timeout: float = TIMEOUT_S):
    """Poll `condition` until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.25)


class Relay:
    """`python -m server` on a free loopback port, with the bundled model."""

    def __init__(self, log_path: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(log_path, "wb")
        self.process = subprocess.Popen([sys.executable, "-m", "server", "--port", str(self.port), "--workers", "1"],
                                        cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(self.healthy, f"the relay on {self.url} (log: {log_path})", timeout=120)

    def healthy(self) -> bool:
        if self.process.poll() is not None:
            pytest.fail(f"the relay exited with status {self.process.returncode}; see {self.log.name}")
        try:
            return requests.get(f"{self.url}/healthz", timeout=2).ok
        except requests.ConnectionError:
            return False

    def check(self, data: bytes) -> dict:
        """The relay's verdict for image bytes, asked directly (as the extension does: raw body, TTA on)."""
        response = requests.post(f"{self.url}/api/v1/check", data=data,
                                 headers={"Content-Type": "application/octet-stream"}, timeout=60)
        response.raise_for_status()
        return response.json()

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


class Site:
    """A local web server for the test pages, serving a temporary directory of copied dataset images."""

    def __init__(self, root: Path):
        self.root = root
        handler = functools.partial(QuietHandler, directory=str(root))
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def add_image(self, source: Path, name: str) -> bytes:
        data = source.read_bytes()
        (self.root / name).write_bytes(data)
        return data

    def add_page(self, name: str, body: str) -> str:
        (self.root / name).write_text(f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
                                      f"<title>{name}</title><style>{PAGE_CSS}</style></head>"
                                      f"<body>{body}</body></html>")
        return f"{self.url}/{name}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


# Page styles that a badge must survive: global rules on every element, a positioned body.
PAGE_CSS = """
body { position: relative; margin: 24px; font-family: serif; }
* { box-sizing: border-box; line-height: 3; }
div { display: inline-block; }
.gallery img { width: 150px; height: 150px; object-fit: cover; margin: 6px; }
"""


@pytest.fixture(scope="module")
def chromium_path() -> str:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium), as .ci/run does")
    return CHROMIUM


@pytest.fixture(scope="module")
def relay(tmp_path_factory):
    relay = Relay(tmp_path_factory.mktemp("relay") / "relay.log")
    yield relay
    relay.stop()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    site = Site(tmp_path_factory.mktemp("site"))
    yield site
    site.close()


@pytest.fixture(scope="module")
def images(manifest_rows, data_root, relay, site):
    """Dataset images copied to the site, alternately AI and human, each with the relay's verdict; enough that
    the page holds both images the relay flags (label "ai") and images it does not."""
    by_label = {label: sorted((r for r in manifest_rows if r["label"] == label), key=lambda r: r["sha256"])
                for label in ("ai", "human")}
    picked = []
    for ai_row, human_row in zip(by_label["ai"], by_label["human"]):
        for row in (ai_row, human_row):
            name = f"{row['label']}-{Path(row['path']).name}"
            data = site.add_image(data_root / row["path"], name)
            picked.append({"name": name, "url": f"{site.url}/{name}", "data": data, "row": row,
                           "sha256": hashlib.sha256(data).hexdigest(), "verdict": relay.check(data)})
        flags = {image["verdict"]["label"] == "ai" for image in picked}
        if len(picked) >= PAGE_IMAGES and flags == {True, False}:
            return picked
        if len(picked) >= 24:
            break
    pytest.fail(f"the relay's model judged all of {len(picked)} images alike "
                f"({[image['verdict']['label'] for image in picked]}): cannot test flagging")


@pytest.fixture(scope="module")
def odd_images(site, images, data_root):
    """A 16x16 icon (made from a dataset image) and a broken image (JPEG magic, then garbage) on the site."""
    Image.open(data_root / images[0]["row"]["path"]).convert("RGB").resize((16, 16)).save(site.root / "icon.png")
    (site.root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG " * 8)
    return {"icon": f"{site.url}/icon.png", "broken": f"{site.url}/broken.jpg"}


@pytest.fixture(scope="module")
def browser(chromium_path, tmp_path_factory, relay):
    """A fresh Chromium profile with the extension loaded, pointed at the test relay; yields (context, worker)."""
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("profile")), executable_path=chromium_path, headless=False,
            args=[*CHROMIUM_ARGS, f"--disable-extensions-except={EXTENSION}", f"--load-extension={EXTENSION}"],
            viewport={"width": 1400, "height": 900})
        try:
            worker = context.service_workers[0] if context.service_workers \
                else context.wait_for_event("serviceworker", timeout=30_000)
            assert worker.url.endswith("/background.js")
            worker.evaluate("url => chrome.storage.local.set({settings: {engine: 'relay', relayUrl: url}})", relay.url)
            yield context, worker
        finally:
            context.close()


def open_page(context, worker, url: str):
    """Open url in a new tab; returns (page, tab id)."""
    page = context.new_page()
    page.goto(url)
    page.wait_for_load_state("load")
    tab_id = worker.evaluate("async url => (await chrome.tabs.query({url}))[0].id", url)
    return page, tab_id


def context_menu_check(worker, tab_id: int, image_url: str) -> dict:
    """What a click on "Check if AI-generated" does, dispatched through the service worker; returns the badge."""
    return worker.evaluate("([srcUrl, tabId]) => self.handleContextMenuClick({srcUrl, frameId: 0}, {id: tabId})",
                           [image_url, tab_id])


# roots (the badges' shadow roots) -> state, text and whether each badge lies on its image's top-left corner.
BADGE_STATES_JS = """roots => roots.map(root => {
    const host = root.host, badge = root.querySelector('.badge');
    const img = Array.from(document.images).find(i => (i.currentSrc || i.src).startsWith(host.dataset.url));
    const box = host.getBoundingClientRect(), image = img && img.getBoundingClientRect();
    return {url: host.dataset.url, state: badge.dataset.state, text: badge.textContent,
            onCorner: !!image && box.left >= image.left && box.top >= image.top
                      && box.left < image.left + 20 && box.top < image.top + 20
                      && box.width > 20 && box.height > 10};
})"""


def badges(page) -> dict:
    """The badges on the page by image URL (BADGE_STATES_JS), read in the content script's world: the badges'
    shadow roots are closed to the page."""
    return {b["url"]: b for b in extension_world(page).shadows("animeart-badge", BADGE_STATES_JS)}


def badge_host(image_url: str) -> str:
    """The selector of the image's badge (badges are keyed by the image URL's first 300 characters)."""
    return f'animeart-badge[data-url="{image_url}"]'


def panel_state(page, image_url: str) -> list:
    """[whether the image's details panel is shown, its badge's aria-expanded]."""
    return extension_world(page).shadows(badge_host(image_url), """([root]) =>
        [root.querySelector('.panel').checkVisibility(), root.querySelector('.badge').getAttribute('aria-expanded')]""")


def open_details(page, image_url: str) -> str:
    """Click the image's badge (a real click) and return the text of the details panel it opens."""
    world = extension_world(page)
    world.click(badge_host(image_url), ".badge")
    world.wait("host => chrome.dom.openOrClosedShadowRoot(document.querySelector(host)).querySelector('.panel')"
               ".checkVisibility()", badge_host(image_url), what="the details panel")
    return world.text(badge_host(image_url), ".panel")


def wait_for_panel_text(page, image_url: str, text: str, timeout: float = TIMEOUT_S) -> str:
    """Wait until the image's details panel shows `text`; returns the panel's text."""
    return extension_world(page).wait("""([host, text]) => {
        const panel = chrome.dom.openOrClosedShadowRoot(document.querySelector(host)).querySelector('.panel');
        return panel.innerText.includes(text) && panel.innerText; }""", [badge_host(image_url), text],
                                      what=f"{text!r} in the details panel", timeout=timeout)


def scan_stats(worker, tab_id: int) -> dict:
    """Page scan's counts in the tab (checked, skipped, flagged, waiting...); {} before the content script runs."""
    return worker.evaluate("""tabId => chrome.tabs.sendMessage(tabId, {type: 'get-stats'}, {frameId: 0})
                              .catch(() => ({}))""", tab_id)


def wait_for_scan(worker, tab_id: int, checked: int, what: str) -> dict:
    """Wait until page scan has checked `checked` images and has none waiting; returns its counts."""
    last = {}

    def done():
        last.update(scan_stats(worker, tab_id))
        return last.get("checked", -1) >= checked and last.get("waiting") == 0

    deadline = time.monotonic() + TIMEOUT_S
    while not done():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for page scan of {what}; its counts: {last}")
        time.sleep(0.25)
    return dict(last)


def test_context_menu_check_badges_the_image_with_the_relays_verdict(browser, site, images):
    context, worker = browser
    first = images[0]
    blob_source = next(image for image in images if image["row"]["format"] in ("jpg", "png"))
    page_url = site.add_page("context.html", f"""
        <h1>Context menu</h1>
        <div class="gallery"><img id="plain" src="{first['name']}" alt=""><img id="inline" alt=""><img id="blob" alt=""></div>
        <script>
          fetch("{blob_source['name']}").then(r => r.blob()).then(b => {{ document.getElementById("blob").src = URL.createObjectURL(b); }});
        </script>""")
    page, tab_id = open_page(context, worker, page_url)
    data_url = f"data:image/{first['row']['format']};base64," + base64.b64encode(first["data"]).decode()
    page.evaluate("url => { document.getElementById('inline').src = url; }", data_url)
    page.wait_for_function("() => Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")

    # An http(s) image: the worker fetches it and posts the bytes; the badge shows the relay's label.
    badge = context_menu_check(worker, tab_id, first["url"])
    verdict = first["verdict"]
    assert badge["state"] == verdict["label"]
    assert badge["details"]["sha256"] == first["sha256"]
    assert badge["details"]["probability"] == pytest.approx(verdict["probability"], abs=1e-6)
    shown = badges(page)[first["url"]]
    assert shown["state"] == verdict["label"]
    assert shown["text"].split()[0].lower() == verdict["label"]
    assert shown["onCorner"]

    # A data: URL image and a page's blob: URL image: the same bytes reach the relay, so the same verdict.
    assert context_menu_check(worker, tab_id, data_url)["details"]["sha256"] == first["sha256"]
    blob_url = page.evaluate("() => document.getElementById('blob').src")
    assert blob_url.startswith("blob:")
    blob_badge = context_menu_check(worker, tab_id, blob_url)
    assert blob_badge["details"]["sha256"] == blob_source["sha256"]  # read from the page: the original bytes
    assert blob_badge["state"] == blob_source["verdict"]["label"]
    assert len(page.locator("animeart-badge").all()) == 3

    # The details panel: probability, TTA views, model version; then a "wrong verdict" report, stored locally.
    text = open_details(page, first["url"])
    assert wording.verdict_line(verdict["label"], verdict["probability"]) in text
    assert verdict["model_version"] in text
    for view in verdict["view_probabilities"]:
        assert view in text
    extension_world(page).click(badge_host(first["url"]), ".panel button", "human-made")
    wait_for_panel_text(page, first["url"], "Saved on this computer")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "extension-badge-details.png"))
    reports = worker.evaluate("async () => (await chrome.storage.local.get('reports')).reports")
    assert [(r["sha256"], r["userLabel"], r["modelLabel"]) for r in reports] == \
        [(first["sha256"], "human", verdict["label"])]

    # The options page exports the reports as JSON.
    options = context.new_page()
    options.goto(worker.url.replace("background.js", "options/options.html"))
    expect(options.locator("#report-count")).to_have_text("1")
    with options.expect_download() as download:
        options.click("#export-reports")
    exported = json.loads(Path(download.value.path()).read_text())
    assert exported["reports"][0]["sha256"] == first["sha256"]
    options.close()
    page.close()


def test_context_menu_check_says_why_an_image_cannot_be_judged(browser, site, odd_images):
    context, worker = browser
    page_url = site.add_page("errors.html", """
        <div class="gallery"><img id="icon" src="icon.png" style="width:16px;height:16px" alt="">
        <img id="broken" src="broken.jpg" width="200" height="200" alt="broken"></div>""")
    page, tab_id = open_page(context, worker, page_url)

    assert context_menu_check(worker, tab_id, odd_images["icon"])["state"] == "too-small"
    assert context_menu_check(worker, tab_id, odd_images["broken"])["state"] == "unreadable"
    shown = badges(page)
    assert shown[odd_images["icon"]]["text"] == "Too small"
    assert shown[odd_images["broken"]]["text"] == "Unreadable image"
    page.close()


def copy_of(image: dict, prefix: str, site, data_root) -> dict:
    """The same image under a new URL (same bytes, so the same verdict)."""
    name = f"{prefix}-{image['name']}"
    site.add_image(data_root / image["row"]["path"], name)
    return dict(image, name=name, url=f"{site.url}/{name}")


def test_page_scan_flags_the_images_the_relay_judges_ai(browser, site, images, odd_images, data_root):
    context, worker = browser
    below, added = copy_of(images[0], "below", site, data_root), copy_of(images[1], "added", site, data_root)
    tags = "".join(f'<img src="{html.escape(image["name"])}" alt="">' for image in images)
    page_url = site.add_page("scan.html", f"""
        <h1>Page scan</h1>
        <div class="gallery" id="gallery">{tags}<img id="broken" src="broken.jpg" width="150" height="150" alt="">
        <img id="icon" src="icon.png" style="width:16px;height:16px" alt=""></div>
        <p style="height: 3000px">Scroll down.</p>
        <div class="gallery"><img id="below" src="{below['name']}" alt=""></div>""")
    page, tab_id = open_page(context, worker, page_url)

    # The popup shows the relay's status; turning scan on sends this once the user allows the site (the
    # permission for this origin is already granted).
    popup = context.new_page()
    popup.goto(worker.url.replace("background.js", "popup/popup.html"))
    popup.locator("#relay[data-state='ok']").wait_for()
    assert images[0]["verdict"]["model_version"] in popup.inner_text("#relay-model")
    answer = popup.evaluate("([pageUrl, tabId]) => chrome.runtime.sendMessage("
                            "{type: 'set-site-scan', pageUrl, enabled: true, tabId})", [page_url, tab_id])
    assert answer == {"sites": ["http://127.0.0.1/*"]}
    popup.close()

    visible = len(images) + 1  # the broken image too; the icon is skipped
    stats = wait_for_scan(worker, tab_id, visible, "the visible images")
    assert stats["checked"] == visible, "the image below the fold is checked only once scrolled into view"
    assert stats["skipped"] == 1  # the 16 px icon
    shown = badges(page)
    for image in images:
        flagged = image["verdict"]["label"] == "ai"
        assert (image["url"] in shown) == flagged, f"{image['name']}: relay said {image['verdict']['label']}"
        if flagged:
            assert shown[image["url"]]["state"] == "ai"
            assert shown[image["url"]]["onCorner"]
    assert shown[odd_images["broken"]]["state"] == "unreadable"
    assert odd_images["icon"] not in shown
    assert stats["flagged"] == sum(image["verdict"]["label"] == "ai" for image in images)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "extension-page-scan.png"))

    # Scrolled into view: checked (IntersectionObserver). Added to the page: checked (MutationObserver).
    page.evaluate("() => document.getElementById('below').scrollIntoView()")
    assert wait_for_scan(worker, tab_id, visible + 1, "the image scrolled into view")["checked"] == visible + 1
    page.evaluate("""url => { const img = document.createElement('img'); img.src = url;
                              document.getElementById('below').after(img); }""", added["url"])
    assert wait_for_scan(worker, tab_id, visible + 2, "the image added to the page")["checked"] == visible + 2
    shown = badges(page)
    for image in (below, added):
        assert (image["url"] in shown) == (image["verdict"]["label"] == "ai"), image["name"]
    page.close()


def test_relay_evidence_and_heatmap_in_the_badge_details(browser, site, relay, manifest_rows):
    """With the relay checking: a NovelAI PNG's badge is AI by its metadata, the details list the relay's evidence,
    and the heatmap comes from the relay's /api/v1/explain on request."""
    from conftest import pick
    context, worker = browser
    novelai = pick(manifest_rows, "tsunamori-novelai", 2)[1]
    data = site.add_image(novelai, "relay-novelai.png")
    url = f"{site.url}/relay-novelai.png"
    page, tab_id = open_page(context, worker, site.add_page("relay-evidence.html", """
        <div class="gallery"><img src="relay-novelai.png" alt="a NovelAI render"></div>"""))
    badge = context_menu_check(worker, tab_id, url)
    assert badge["state"] == "ai" and badge["details"]["reason"] == "metadata"
    assert badge["details"]["evidence"] == relay.check(data)["evidence"]
    assert "Names an AI generator: PNG text 'Software': NovelAI" in open_details(page, url)
    extension_world(page).click(badge_host(url), ".panel button", "Show where the model sees AI")
    assert "7×7 windows" in wait_for_panel_text(page, url, "windows", timeout=120)
    assert extension_world(page).shadows(badge_host(url), "([root]) => !!root.querySelector('.panel canvas.heatmap')")
    page.close()


def test_badges_and_pages_are_worded_and_accessible(browser, site, images):
    """Badges carry a text label and whole-percent scores; the details panel opens with Enter or Space and closes
    with Esc; the page with badges, the popup and the options page have no serious or critical axe-core
    violations in light and dark colour schemes. Screenshots of each go to test-artifacts/."""
    context, worker = browser
    ARTIFACTS.mkdir(exist_ok=True)
    ai = next(image for image in images if image["verdict"]["label"] == "ai")
    other = next(image for image in images if image["verdict"]["label"] != "ai")
    page_url = site.add_page("a11y.html", f"""<main><h1>Badges</h1><div class="gallery">
        <img src="{ai['name']}" alt="first picture"><img src="{other['name']}" alt="second picture"></div></main>""")
    page, tab_id = open_page(context, worker, page_url)
    page.wait_for_function("() => Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
    for image in (ai, other):
        context_menu_check(worker, tab_id, image["url"])
    shown = badges(page)
    for image in (ai, other):
        label, p = image["verdict"]["label"], image["verdict"]["probability"]
        assert shown[image["url"]]["text"] == wording.badge_text(label, p)
        assert shown[image["url"]]["text"].split()[0] == wording.SHORT_LABELS[label]  # words, not colour alone
        assert wording_problems(shown[image["url"]]["text"]) == []

    # Keyboard: Tab reaches the first badge; Enter opens its panel, Esc closes it and keeps the focus, Space opens.
    world = extension_world(page)
    page.evaluate("() => document.activeElement.blur()")
    page.keyboard.press("Tab")
    focused = """() => [document.activeElement.dataset.url,
                        chrome.dom.openOrClosedShadowRoot(document.activeElement)?.activeElement?.className]"""
    assert world.evaluate(focused) == [ai["url"], "badge"]
    page.keyboard.press("Enter")
    assert panel_state(page, ai["url"]) == [True, "true"]
    page.keyboard.press("Escape")
    assert panel_state(page, ai["url"]) == [False, "false"]
    assert world.evaluate(focused) == [ai["url"], "badge"]
    page.emulate_media(reduced_motion="reduce")
    page.keyboard.press(" ")
    assert panel_state(page, ai["url"]) == [True, "true"]
    assert page.evaluate("() => document.getAnimations().length") == 0  # nothing moves
    verdict = ai["verdict"]
    text = world.text(badge_host(ai["url"]), ".panel")
    assert wording.verdict_line(verdict["label"], verdict["probability"]) in text
    assert wording.rules_line(verdict["threshold"], verdict["unsure_band"]) in text
    assert wording.CAVEAT in text
    # The rules hold for our own words; evidence lines quote the file's metadata as it is (e.g. "noise": 0.667).
    ours = world.shadows(badge_host(ai["url"]), """([root]) => Array.from(root.querySelector('.panel').children)
        .filter((el) => !el.classList.contains('evidence')).map((el) => el.innerText).join('\\n')""")
    assert wording.verdict_line(verdict["label"], verdict["probability"]) in ours
    assert wording_problems(ours) == []

    def check(page, name: str, contrast=None, world=None):
        for scheme in ("light", "dark"):
            page.emulate_media(color_scheme=scheme)
            results = axe_results_with_badges(world) if world else axe_results(page)
            assert serious_violations(results) == [], f"{name} in {scheme} colours"
            if contrast:
                contrast(scheme)
            page.screenshot(path=str(ARTIFACTS / f"extension-{name}{'-dark' if scheme == 'dark' else ''}.png"),
                            full_page=True)
        return results

    def badge_contrast(scheme: str):
        # axe leaves text over the page's images to a person ("incomplete"); the badge and panel paint their own
        # opaque background, so their contrast is computed here.
        pairs = world.shadows("animeart-badge", """roots => roots.flatMap(root => {
            const style = (el) => getComputedStyle(el);
            const badge = root.querySelector('.badge'), panel = root.querySelector('.panel');
            const texts = panel.hidden ? [] : Array.from(panel.querySelectorAll(':scope > div'));
            return [[badge.textContent, style(badge).color, style(badge).backgroundColor],
                    ...texts.map(div => [div.textContent, style(div).color, style(panel).backgroundColor])];
        })""")
        assert len(pairs) > 2  # both badges and the open panel's lines
        for text, foreground, background in pairs:
            assert contrast_ratio(foreground, background) >= 4.5, f"{text!r} in {scheme} colours"

    results = check(page, "badge-details-panel", badge_contrast, world)  # axe inside the closed shadow roots too
    named = [json.loads(t)[0] for rule in results["passes"] if rule["id"] == "button-name" for t in rule["targets"]]
    in_badges = [target for target in named if isinstance(target, list) and target[0].startswith("animeart-badge")]
    assert len({target[0] for target in in_badges}) == 2, f"axe skipped the badges: {named}"
    assert len(in_badges) == 2 + 3, f"the two badges and the open panel's three buttons: {named}"

    popup = context.new_page()
    popup.set_viewport_size({"width": 340, "height": 480})
    popup.goto(worker.url.replace("background.js", "popup/popup.html"))
    popup.locator("#relay[data-state='ok']").wait_for()
    assert wording.CAVEAT in popup.inner_text("body")
    check(popup, "popup")
    options = context.new_page()
    options.goto(worker.url.replace("background.js", "options/options.html"))
    expect(options.locator("#caveat")).to_have_text(wording.CAVEAT)
    expect(options.locator("#sites li")).not_to_have_count(0)
    check(options, "options")
    for opened in (options, popup, page):
        opened.close()


def test_relay_down_is_reported_not_silent(browser, site, images, relay, manifest_rows, data_root):
    context, worker = browser
    used = {image["sha256"] for image in images}
    fresh = max((row for row in manifest_rows if row["sha256"] not in used), key=lambda row: row["sha256"])
    site.add_image(data_root / fresh["path"], "fresh" + Path(fresh["path"]).suffix)  # in no cache
    fresh_url = f"{site.url}/fresh{Path(fresh['path']).suffix}"
    page_url = site.add_page("down.html", f'<div class="gallery"><img src="{fresh_url}" alt=""></div>')
    relay.stop()

    page, tab_id = open_page(context, worker, page_url)
    badge = context_menu_check(worker, tab_id, fresh_url)
    assert badge["state"] == "unreachable"
    assert badges(page)[fresh_url]["text"] == "Relay unreachable"
    # Page scan (still on for this site) says so once for the page instead of badging every image.
    notice = "roots => roots.some(root => root.querySelector('.notice').dataset.state === 'unreachable')"
    wait_for(lambda: extension_world(page).shadows("animeart-notice", notice),
             "page scan's notice that the relay is unreachable")

    popup = context.new_page()
    popup.goto(worker.url.replace("background.js", "popup/popup.html"))
    popup.locator("#relay[data-state='down']").wait_for()
    assert "Relay unreachable" in popup.inner_text("#relay-status")
    popup.close()
    page.close()
