"""The extension in headless Chromium against what the security review found: content scripts cannot touch the
settings (relay URL, token), and the page cannot read the badges' verdicts or press their buttons."""
from edge_runtime import wording
from shadow_support import extension_world
from test_extension_e2e import (badge_host, badges, browser, chromium_path, context_menu_check, images,  # noqa: F401
                                open_details, open_page, panel_state, relay, site, wait_for_panel_text)

__all__ = ["browser", "chromium_path", "images", "relay", "site"]

WRITE_FROM_CONTENT_SCRIPT = """async tabId => {
    const [{result}] = await chrome.scripting.executeScript({target: {tabId}, world: "ISOLATED", func: async () => {
        try {
            await chrome.storage.local.set({settings: {relayUrl: "https://evil.example", token: "stolen"}});
            return "written";
        } catch (error) {
            return "refused: " + error.message;
        }
    }});
    return result;
}"""


def test_content_scripts_cannot_change_the_settings(browser, site):
    context, worker = browser
    before = worker.evaluate("async () => (await chrome.storage.local.get('settings')).settings")
    page, tab_id = open_page(context, worker, site.add_page("settings-guard.html", "<p>no images</p>"))
    try:
        answer = worker.evaluate(WRITE_FROM_CONTENT_SCRIPT, tab_id)
        assert answer.startswith("refused"), answer
        assert worker.evaluate("async () => (await chrome.storage.local.get('settings')).settings") == before
    finally:
        page.close()


def test_the_page_can_neither_read_nor_press_the_badge(browser, site, images):
    """The badge's shadow root is closed: the page's script finds an empty host with no verdict on it, and its
    scripted clicks (on the host, or on the badge's buttons had it got hold of them) open nothing, file no report
    and ask for no heatmap. A real click still works."""
    context, worker = browser
    image = images[0]
    verdict = image["verdict"]
    page, tab_id = open_page(context, worker, site.add_page("closed-shadow.html", f"""
        <div class="gallery"><img src="{image['name']}" alt="a picture"></div>"""))
    try:
        assert context_menu_check(worker, tab_id, image["url"])["details"]["sha256"] == image["sha256"]
        world, host = extension_world(page), badge_host(image["url"])
        assert badges(page)[image["url"]]["text"] == wording.badge_text(verdict["label"], verdict["probability"])

        seen = world.page_evaluate("""host => { const element = document.querySelector(host);
            return {shadowRoot: element.shadowRoot, text: element.textContent, html: element.innerHTML,
                    attributes: element.getAttributeNames().sort()}; }""", host)
        assert seen == {"shadowRoot": None, "text": "", "html": "", "attributes": ["data-url", "style"]}

        world.page_evaluate("host => document.querySelector(host).click()", host)
        assert world.page_click(host, ".badge") is False  # the click reached the button, untrusted
        for name in ("AI-generated", "human-made", "Show where the model sees AI"):
            assert world.page_click(host, ".panel button", name) is False, name
        page.wait_for_timeout(1000)  # time for a report or a heatmap request to have been answered
        assert panel_state(page, image["url"]) == [False, "false"]
        text = world.text(host, ".panel")
        assert "Show where the model sees AI" in text and "Mapping" not in text and "saved" not in text.lower()
        assert worker.evaluate("async () => (await chrome.storage.local.get('reports')).reports") is None

        assert wording.verdict_line(verdict["label"], verdict["probability"]) in open_details(page, image["url"])
        world.click(host, ".panel button", "AI-generated")
        wait_for_panel_text(page, image["url"], "Saved on this computer")
        reports = worker.evaluate("async () => (await chrome.storage.local.get('reports')).reports")
        assert [(r["sha256"], r["userLabel"]) for r in reports] == [(image["sha256"], "ai")]
    finally:
        page.close()
