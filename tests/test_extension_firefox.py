"""The browser extension end to end in Debian's Firefox ESR (headless), the Firefox build installed as a temporary
add-on, against the real relay with the bundled model and local pages of real dataset images.

The same scenarios as the Chromium test (test_extension_e2e.py, whose relay, site and image fixtures this module
reuses): the context-menu check puts the relay's verdict on the image, page scan flags the images the relay judges
AI and not the others, and a relay that is down is reported. Here the context menu is the real one: a right click
on the image opens Firefox's menu and its "Check if AI-generated" item is activated, so Firefox fills in
`menus.onClicked` itself. Extension pages (popup, options) are opened in tabs and run script through Firefox's
debugger protocol (see firefox_support.py). Screenshots go to test-artifacts/ with a "-firefox" suffix.

Firefox's default engine is the in-browser one (LiteRT.js in the background page): its answers are held to
`python -m edge_runtime` on the Chromium engine test's parity images, and a context-menu check runs with no relay.
"""
from __future__ import annotations

import base64
import html
import json
import subprocess
import time
from pathlib import Path

import pytest

from edge_runtime import wording
from edge_runtime.detector import decide
import test_extension_browser_engine as chromium_engine
import test_extension_e2e as chromium_e2e
from firefox_support import Firefox
from test_extension_browser_engine import FORMATS, PARITY_TOLERANCE
from test_extension_e2e import ARTIFACTS, BADGE_STATES_JS, REPO, TIMEOUT_S, badge_host, copy_of, free_port, wait_for

pytestmark = pytest.mark.browser

MENU_LABEL = "Check if AI-generated"

# The Chromium tests' fixtures, one instance per module: the relay with the bundled model, the site, its images,
# and the Python runtime's verdicts for the browser engine's parity images.
relay, site, images, odd_images = chromium_e2e.relay, chromium_e2e.site, chromium_e2e.images, chromium_e2e.odd_images
python_verdicts, confident = chromium_engine.python_verdicts, chromium_engine.confident


@pytest.fixture(scope="module")
def firefox_build(tmp_path_factory) -> Path:
    """The Firefox variant of the extension, written by its own build script."""
    out = tmp_path_factory.mktemp("extension") / "firefox"
    subprocess.run(["node", str(REPO / "extension" / "build_firefox.mjs"), str(out)], check=True,
                   capture_output=True)
    return out


@pytest.fixture(scope="module")
def firefox(firefox_build, tmp_path_factory, relay):
    """Firefox on a fresh profile with the add-on installed temporarily, pointed at the test relay."""
    work = tmp_path_factory.mktemp("firefox")
    browser = Firefox(work / "profile", work / "firefox.log", work / "downloads")
    try:
        addon = browser.install(firefox_build)
        addon.background("url => browser.storage.local.set({settings: {engine: 'relay', relayUrl: url}})", relay.url)
        yield browser, addon
    finally:
        browser.close()


def open_page(browser, addon, url: str):
    """Open url in a new tab; returns (BiDi context, the extension's tab id). (Firefox reads a port in a
    tabs.query url pattern as part of the host, so the tab is found by comparing URLs.)"""
    context = browser.new_tab(url)
    tab_id = addon.background("async url => (await browser.tabs.query({})).find(tab => tab.url === url).id", url)
    return context, tab_id


def all_images_loaded(browser, context) -> bool:
    return browser.bidi.evaluate(context, "() => Array.from(document.images).every(i => i.complete)")


def mouse(browser, context, x: float, y: float, button: int = 0):
    """A real click (button 0) or right click (button 2) at viewport coordinates."""
    browser.bidi.command("input.performActions", context=context, actions=[{
        "type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"},
        "actions": [{"type": "pointerMove", "x": round(x), "y": round(y)},
                    {"type": "pointerDown", "button": button}, {"type": "pointerUp", "button": button}]}])
    browser.bidi.command("input.releaseActions", context=context)


def visible_point(browser, context, selector: str) -> tuple[float, float]:
    """A point of the element `selector` (scrolled into view) that nothing covers, such as another image's badge;
    in viewport coordinates, nearest the element's centre."""
    point = browser.bidi.evaluate(context, """selector => {
        const el = document.querySelector(selector); el.scrollIntoView({block: 'center'});
        const r = el.getBoundingClientRect(), points = [];
        for (let i = 1; i < 8; i++) {
            for (let j = 1; j < 8; j++) points.push([r.x + r.width * i / 8, r.y + r.height * j / 8]);
        }
        const offCentre = ([x, y]) => Math.hypot(x - r.x - r.width / 2, y - r.y - r.height / 2);
        points.sort((a, b) => offCentre(a) - offCentre(b));
        return points.find(([x, y]) => document.elementFromPoint(x, y) === el) ?? null; }""", selector)
    assert point, f"{selector} is covered all over"
    return tuple(point)


def context_menu_check(browser, context, selector: str, image_url: str) -> dict:
    """Right-click the image, choose "Check if AI-generated" in Firefox's context menu; the badge it gets (badges
    are keyed by the image URL's first 300 characters)."""
    mouse(browser, context, *visible_point(browser, context, selector), button=2)
    items = wait_for(lambda: browser.chrome_evaluate("""label => {
        const menu = document.getElementById('contentAreaContextMenu');
        if (menu.state !== 'open') return null;
        return Array.from(menu.querySelectorAll('menuitem')).filter(i => !i.hidden).map(i => i.label); }""",
                                                   MENU_LABEL), "Firefox's context menu to open")
    assert MENU_LABEL in items, f"the extension's item is not in the image's context menu: {items}"
    browser.chrome_evaluate("""label => {
        const menu = document.getElementById('contentAreaContextMenu');
        menu.activateItem(Array.from(menu.querySelectorAll('menuitem')).find(i => i.label === label)); }""",
                          MENU_LABEL)
    return wait_for(lambda: badges(browser, context).get(image_url, {}).get("state") not in (None, "pending")
                    and badges(browser, context)[image_url], f"the badge on {image_url}")


def badges(browser, context) -> dict:
    """The badges on the page by image URL (BADGE_STATES_JS), read through BiDi's handles on their shadow roots,
    which are closed to the page."""
    return {b["url"]: b for b in browser.bidi.shadows(context, "animeart-badge", BADGE_STATES_JS)}


def panel_text(browser, context, image_url: str) -> str | None:
    """The text of the image's details panel, None while it is closed."""
    return browser.bidi.shadows(context, badge_host(image_url), """([root]) => {
        const panel = root.querySelector('.panel'); return panel.hidden ? null : panel.innerText; }""")


def click_in_badge(browser, context, image_url: str, selector: str, text: str = ""):
    """A real click on the element matching selector (and containing text) in the image's badge."""
    mouse(browser, context, *browser.bidi.shadows(context, badge_host(image_url), """([root], selector, text) => {
        const element = Array.from(root.querySelectorAll(selector)).find(e => e.textContent.includes(text));
        const r = element.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }""",
                                                   selector, text))


def open_details(browser, context, image_url: str) -> str:
    """Click the image's badge (a real click) and return the text of the details panel it opens."""
    click_in_badge(browser, context, image_url, ".badge")
    return wait_for(lambda: panel_text(browser, context, image_url), "the details panel")


def scan_stats(addon, tab_id: int) -> dict:
    """Page scan's counts in the tab (checked, skipped, flagged, waiting...); {} before the content script runs."""
    return addon.background("""tabId => browser.tabs.sendMessage(tabId, {type: 'get-stats'}, {frameId: 0})
                               .catch(() => ({}))""", tab_id)


def wait_for_scan(addon, tab_id: int, checked: int, what: str) -> dict:
    """Wait until page scan has checked `checked` images and has none waiting; returns its counts."""
    last = {}

    def done():
        last.update(scan_stats(addon, tab_id))
        return last.get("checked", -1) >= checked and last.get("waiting") == 0

    deadline = time.monotonic() + TIMEOUT_S
    while not done():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for page scan of {what}; its counts: {last}")
        time.sleep(0.25)
    return dict(last)


def open_extension_page(browser, addon, path: str) -> str:
    """An extension page (popup/popup.html, options/options.html) in a new tab; returns its BiDi context."""
    context = browser.new_tab()
    browser.bidi.command("browsingContext.navigate", context=context, url=addon.url(path), wait="none")
    addon.document(path)
    return context


def popup_relay_state(addon, state: str) -> str:
    """Wait until the popup's relay line has data-state `state`; returns its text."""
    return wait_for(lambda: addon.evaluate("popup/popup.html", """state => {
        const relay = document.getElementById('relay');
        return relay && relay.dataset.state === state ? document.body.innerText : null; }""", state),
                    f"the popup to show the relay as {state}")


def test_context_menu_check_badges_the_image_with_the_relays_verdict(firefox, site, images):
    browser, addon = firefox
    first = images[0]
    blob_source = next(image for image in images if image["row"]["format"] in ("jpg", "png"))
    data_url = f"data:image/{first['row']['format']};base64," + base64.b64encode(first["data"]).decode()
    page_url = site.add_page("context-firefox.html", f"""
        <h1>Context menu</h1>
        <div class="gallery"><img id="plain" src="{first['name']}" alt=""><img id="inline" alt="">
        <img id="blob" alt=""></div>
        <script>
          fetch("{blob_source['name']}").then(r => r.blob())
            .then(b => {{ document.getElementById("blob").src = URL.createObjectURL(b); }});
        </script>""")
    page, _ = open_page(browser, addon, page_url)
    browser.bidi.evaluate(page, "url => { document.getElementById('inline').src = url; }", data_url)
    wait_for(lambda: browser.bidi.evaluate(page, "() => Array.from(document.images).every(i => i.naturalWidth > 0)"),
             "the page's images")

    # An http(s) image: the background page fetches it and posts the bytes; the badge shows the relay's verdict.
    verdict = first["verdict"]
    shown = context_menu_check(browser, page, "#plain", first["url"])
    assert shown["state"] == verdict["label"]
    assert shown["text"] == wording.badge_text(verdict["label"], verdict["probability"])
    assert shown["onCorner"]

    # A data: URL image and a page's blob: URL image: the same bytes reach the relay, so the same verdict.
    assert context_menu_check(browser, page, "#inline", data_url[:300])["text"] == shown["text"]
    blob_url = browser.bidi.evaluate(page, "() => document.getElementById('blob').src")
    assert blob_url.startswith("blob:")
    blob_badge = context_menu_check(browser, page, "#blob", blob_url)
    assert blob_badge["text"] == wording.badge_text(blob_source["verdict"]["label"],
                                                    blob_source["verdict"]["probability"])
    assert len(badges(browser, page)) == 3

    # The page sees an empty host: the shadow root is closed. A scripted click on the badge (handed to the page's
    # script by BiDi) opens nothing; the badge takes only the user's clicks.
    host = badge_host(first["url"])
    assert browser.bidi.evaluate(page, "host => document.querySelector(host).shadowRoot", host) is None
    assert browser.bidi.shadows(page, host, """([root]) => { let trusted = null;
        root.querySelector('.badge').addEventListener('click', (event) => { trusted = event.isTrusted; });
        root.querySelector('.badge').click(); return trusted; }""") is False
    assert panel_text(browser, page, first["url"]) is None

    # The details panel (opened with a real click): verdict line, TTA views, model version; then a "wrong
    # verdict" report, stored locally.
    text = open_details(browser, page, first["url"])
    assert wording.verdict_line(verdict["label"], verdict["probability"]) in text
    assert verdict["model_version"] in text
    for view in verdict["view_probabilities"]:
        assert view in text
    # A real click: the badge ignores clicks that the page's script makes.
    click_in_badge(browser, page, first["url"], ".panel button", "human-made")
    wait_for(lambda: "Saved on this computer" in panel_text(browser, page, first["url"]), "the report to be saved")
    ARTIFACTS.mkdir(exist_ok=True)
    browser.screenshot(page, ARTIFACTS / "extension-badge-details-firefox.png")
    reports = addon.background("async () => (await browser.storage.local.get('reports')).reports")
    assert [(r["sha256"], r["userLabel"], r["modelLabel"]) for r in reports] == \
        [(first["sha256"], "human", verdict["label"])]

    # The options page exports the reports as a JSON download.
    options = open_extension_page(browser, addon, "options/options.html")
    wait_for(lambda: addon.evaluate("options/options.html",
                                    "() => document.getElementById('report-count').textContent") == "1",
             "the options page's report count")
    addon.evaluate("options/options.html", "() => document.getElementById('export-reports').click()")
    exported = wait_for(lambda: next(iter(browser.downloads.glob("*.json")), None), "the exported reports")
    wait_for(lambda: exported.stat().st_size > 0 and not list(browser.downloads.glob("*.part")), "the download")
    assert json.loads(exported.read_text())["reports"][0]["sha256"] == first["sha256"]
    browser.close_tab(options)
    browser.close_tab(page)


def test_context_menu_check_says_why_an_image_cannot_be_judged(firefox, site, odd_images):
    browser, addon = firefox
    page_url = site.add_page("errors-firefox.html", """
        <div class="gallery"><img id="icon" src="icon.png" style="width:16px;height:16px" alt="">
        <img id="broken" src="broken.jpg" width="200" height="200" alt="broken"></div>""")
    page, _ = open_page(browser, addon, page_url)
    wait_for(lambda: all_images_loaded(browser, page), "the page's images")

    assert context_menu_check(browser, page, "#icon", odd_images["icon"])["text"] == "Too small"
    assert context_menu_check(browser, page, "#broken", odd_images["broken"])["text"] == "Unreadable image"
    browser.close_tab(page)


def test_page_scan_flags_the_images_the_relay_judges_ai(firefox, site, images, odd_images, data_root):
    browser, addon = firefox
    below, added = copy_of(images[0], "below-ff", site, data_root), copy_of(images[1], "added-ff", site, data_root)
    tags = "".join(f'<img src="{html.escape(image["name"])}" alt="">' for image in images)
    page_url = site.add_page("scan-firefox.html", f"""
        <h1>Page scan</h1>
        <div class="gallery" id="gallery">{tags}<img id="broken" src="broken.jpg" width="150" height="150" alt="">
        <img id="icon" src="icon.png" style="width:16px;height:16px" alt=""></div>
        <p style="height: 3000px">Scroll down.</p>
        <div class="gallery"><img id="below" src="{below['name']}" alt=""></div>""")
    page, tab_id = open_page(browser, addon, page_url)

    # The popup shows the relay's status; turning scan on sends this once the user allows the site (the
    # permission for this origin is already granted).
    popup = open_extension_page(browser, addon, "popup/popup.html")
    assert images[0]["verdict"]["model_version"] in popup_relay_state(addon, "ok")
    answer = addon.evaluate("popup/popup.html", """([pageUrl, tabId]) => browser.runtime.sendMessage(
        {type: 'set-site-scan', pageUrl, enabled: true, tabId})""", [page_url, tab_id])
    assert answer == {"sites": ["http://127.0.0.1/*"]}
    browser.close_tab(popup)
    browser.bidi.command("browsingContext.activate", context=page)

    visible = len(images) + 1  # the broken image too; the icon is skipped
    stats = wait_for_scan(addon, tab_id, visible, "the visible images")
    assert stats["checked"] == visible, "the image below the fold is checked only once scrolled into view"
    assert stats["skipped"] == 1  # the 16 px icon
    shown = badges(browser, page)
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
    browser.screenshot(page, ARTIFACTS / "extension-page-scan-firefox.png")

    # Scrolled into view: checked (IntersectionObserver). Added to the page: checked (MutationObserver).
    browser.bidi.evaluate(page, "() => document.getElementById('below').scrollIntoView()")
    assert wait_for_scan(addon, tab_id, visible + 1, "the image scrolled into view")["checked"] == visible + 1
    browser.bidi.evaluate(page, """url => { const img = document.createElement('img'); img.src = url;
                                          document.getElementById('below').after(img); }""", added["url"])
    assert wait_for_scan(addon, tab_id, visible + 2, "the image added to the page")["checked"] == visible + 2
    shown = badges(browser, page)
    for image in (below, added):
        assert (image["url"] in shown) == (image["verdict"]["label"] == "ai"), image["name"]
    browser.close_tab(page)


def test_relay_down_is_reported_not_silent(firefox, site, images, relay, manifest_rows, data_root):
    browser, addon = firefox
    used = {image["sha256"] for image in images}
    fresh = max((row for row in manifest_rows if row["sha256"] not in used), key=lambda row: row["sha256"])
    name = "fresh-ff" + Path(fresh["path"]).suffix
    site.add_image(data_root / fresh["path"], name)  # in no cache
    fresh_url = f"{site.url}/{name}"
    page_url = site.add_page("down-firefox.html", f'<div class="gallery"><img id="fresh" src="{name}" alt=""></div>')
    relay.stop()

    page, _ = open_page(browser, addon, page_url)
    wait_for(lambda: all_images_loaded(browser, page), "the page's image")
    assert context_menu_check(browser, page, "#fresh", fresh_url)["text"] == "Relay unreachable"
    # Page scan (still on for this site) says so once for the page instead of badging every image.
    notice = "roots => roots.some(root => root.querySelector('.notice').dataset.state === 'unreachable')"
    wait_for(lambda: browser.bidi.shadows(page, "animeart-notice", notice),
             "page scan's notice that the relay is unreachable")
    ARTIFACTS.mkdir(exist_ok=True)
    browser.screenshot(page, ARTIFACTS / "extension-relay-down-firefox.png")
    # The notice sits in a corner: the page under it still takes clicks, the right click included.
    assert context_menu_check(browser, page, "#fresh", fresh_url)["text"] == "Relay unreachable"

    popup = open_extension_page(browser, addon, "popup/popup.html")
    assert "Relay unreachable" in popup_relay_state(addon, "down")
    browser.close_tab(popup)
    browser.close_tab(page)


@pytest.fixture(scope="module")
def engine_firefox(firefox_build, tmp_path_factory):
    """Firefox with the add-on on its default engine ("in this browser"), the relay URL on a port where nothing
    listens."""
    work = tmp_path_factory.mktemp("firefox-engine")
    browser = Firefox(work / "profile", work / "firefox.log", work / "downloads")
    try:
        addon = browser.install(firefox_build)
        addon.background("url => browser.storage.local.set({settings: {relayUrl: url}})",
                         f"http://127.0.0.1:{free_port()}")
        yield browser, addon
    finally:
        browser.close()


def test_browser_engine_in_firefox_matches_the_python_runtime(engine_firefox, python_verdicts, data_root):
    browser, addon = engine_firefox
    rows = []
    for row, expected in python_verdicts:
        answer = addon.background("""async (data, tta) => {
            const host = await import('./engine/host.js');
            const bytes = Uint8Array.from(atob(data), c => c.charCodeAt(0));
            return host.answerEngineRequest({type: 'check', bytes, tta}); }""",
                                  base64.b64encode((data_root / row["path"]).read_bytes()).decode(), expected["tta"])
        assert "result" in answer, f"{row['path']}: {answer}"
        got = answer["result"]
        rows.append({"path": row["path"], "label": row["label"], "format": row["format"],
                     "python": expected["probability"], "firefox": got["probability"],
                     "diff": abs(got["probability"] - expected["probability"]),
                     # the model's label: the engine leaves the metadata rule to the checker (lib/checker.js)
                     "python_label": decide(expected["probability"], expected["threshold"], expected["unsure_band"]),
                     "firefox_label": got["label"]})
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "browser-engine-parity-firefox.json").write_text(json.dumps(rows, indent=1))
    assert {(r["label"], r["format"]) for r in rows} == {(label, f) for label in ("ai", "human") for f in FORMATS}
    assert [r for r in rows if r["diff"] > PARITY_TOLERANCE] == []
    assert [r for r in rows if r["python_label"] != r["firefox_label"]] == []


def test_context_menu_check_runs_in_firefox_without_a_relay(engine_firefox, site, confident):
    browser, addon = engine_firefox
    ai, human = confident[0], confident[1]
    page_url = site.add_page("engine-context-firefox.html", f"""
        <div class="gallery"><img id="ai" src="{ai['name']}" alt="first">
        <img id="human" src="{human['name']}" alt="second"></div>""")
    page, _ = open_page(browser, addon, page_url)
    wait_for(lambda: all_images_loaded(browser, page), "the page's images")
    for selector, image in (("#ai", ai), ("#human", human)):
        assert context_menu_check(browser, page, selector, image["url"])["state"] == image["verdict"]["label"]
    assert "checked in this browser" in open_details(browser, page, ai["url"])
    ARTIFACTS.mkdir(exist_ok=True)
    browser.screenshot(page, ARTIFACTS / "extension-browser-engine-firefox.png")
    browser.close_tab(page)
