"""The extension in headless Chromium against what the security review found: content scripts cannot touch the
settings (relay URL, token)."""
from test_extension_e2e import browser, chromium_path, open_page, relay, site  # noqa: F401 (fixtures)

__all__ = ["browser", "chromium_path", "relay", "site"]

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
