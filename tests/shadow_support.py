"""Reach the extension's badges in Chromium (Playwright): their shadow roots are closed, so neither the page's
script nor Playwright's locators see inside them.

The extension's content script runs in an isolated world of the page, where `chrome.dom.openOrClosedShadowRoot`
opens a closed root. Through a Chrome DevTools Protocol session the tests find that world (an execution context
of the top frame with auxData.type "isolated" and the extension's origin) and call functions there. Clicks are real
mouse clicks at an element's centre, so the badge takes them as the user's (event.isTrusted).
"""
from __future__ import annotations

import json
import time

WAIT_S = 30


class ExtensionWorld:
    """The content script's world in a Playwright page (and the page's main world, for comparison)."""

    def __init__(self, page):
        self.page = page
        self.cdp = page.context.new_cdp_session(page)
        self.contexts: dict[int, dict] = {}
        self.cdp.on("Runtime.executionContextCreated", lambda event: self._add(event["context"]))
        self.cdp.on("Runtime.executionContextDestroyed",
                    lambda event: self.contexts.pop(event["executionContextId"], None))
        self.cdp.on("Runtime.executionContextsCleared", lambda _: self.contexts.clear())
        self.cdp.send("Runtime.enable")  # announces the contexts that exist now, then each new one
        self.frame = self.cdp.send("Page.getFrameTree")["frameTree"]["frame"]["id"]

    def _add(self, context: dict):
        self.contexts[context["id"]] = context

    def context_id(self, isolated: bool = True) -> int:
        """The content script's execution context in the top frame (isolated), or the page's own (main world);
        waits for the content script to be injected."""
        deadline = time.monotonic() + WAIT_S
        while True:
            for context in list(self.contexts.values()):
                aux = context.get("auxData", {})
                if aux.get("frameId") != self.frame:
                    continue
                if isolated and aux.get("type") == "isolated" and context["origin"].startswith("chrome-extension://"):
                    return context["id"]
                if not isolated and aux.get("isDefault"):
                    return context["id"]
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {'content script' if isolated else 'main'} world among {self.contexts}")
            self.page.wait_for_timeout(100)  # lets Playwright deliver the protocol's events

    def _call(self, function: str, args: list, isolated: bool = True, by_value: bool = True) -> dict:
        result = self.cdp.send("Runtime.callFunctionOn", {
            "functionDeclaration": function, "executionContextId": self.context_id(isolated),
            "arguments": [{"value": arg} for arg in args], "returnByValue": by_value, "awaitPromise": True})
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            thrown = details.get("exception", {}).get("description", details)
            raise AssertionError(f"script threw: {thrown}\n{function}")
        return result["result"]

    def run(self, source: str):
        """Run a classic script (such as a library) in the content script's world."""
        result = self.cdp.send("Runtime.evaluate", {"expression": source, "contextId": self.context_id()})
        if "exceptionDetails" in result:
            raise AssertionError(f"script threw: {result['exceptionDetails']}")

    def evaluate(self, function: str, *args):
        """Call `function` (JS source) with JSON arguments in the content script's world; its result, by value."""
        return self._call(function, list(args)).get("value")

    def page_evaluate(self, function: str, *args):
        """Call `function` in the page's main world, as the page's own script would; its result, by value."""
        return self._call(function, list(args), isolated=False).get("value")

    def shadows(self, selector: str, function: str, *args):
        """Call function(roots, ...args) in the content script's world, roots the shadow roots (open or closed) of
        the elements matching selector, in document order."""
        return self.evaluate(f"""(selector, ...args) => ({function})(Array.from(document.querySelectorAll(selector),
            host => chrome.dom.openOrClosedShadowRoot(host)), ...args)""", selector, *args)

    def text(self, host: str, selector: str) -> str:
        """The innerText of `selector` in the shadow root of the first element matching `host`."""
        return self.shadows(host, "([root], selector) => root.querySelector(selector).innerText", selector)

    def element_centre(self, host: str, selector: str, text: str = "") -> tuple[float, float]:
        """The viewport centre of the first element matching `selector` (and containing `text`) in the shadow root
        of `host`, scrolled into view; waits until nothing covers that point."""
        deadline = time.monotonic() + WAIT_S
        while True:
            x, y, hit = self.shadows(host, """([root], selector, text) => {
                const element = Array.from(root.querySelectorAll(selector)).find(e => e.textContent.includes(text));
                element.scrollIntoView({block: 'center'});
                const box = element.getBoundingClientRect(), x = box.x + box.width / 2, y = box.y + box.height / 2;
                return [x, y, element.contains(root.elementFromPoint(x, y))]; }""", selector, text)
            if hit:
                return x, y
            if time.monotonic() > deadline:
                raise AssertionError(f"{selector} ({text!r}) in {host} stays covered")
            self.page.wait_for_timeout(100)

    def click(self, host: str, selector: str, text: str = "", tries: int = 3):
        """A real mouse click on an element in the shadow root of `host` (see element_centre), made again if it did
        not reach the element: on a loaded machine the layout can still shift between measuring and clicking."""
        for _ in range(tries):
            self.shadows(host, """([root], selector, text) => {
                const element = Array.from(root.querySelectorAll(selector)).find(e => e.textContent.includes(text));
                globalThis.testClickArrived = false;
                element.addEventListener('click', () => { globalThis.testClickArrived = true; }, {once: true}); }""",
                         selector, text)
            self.page.mouse.click(*self.element_centre(host, selector, text))
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline:
                if self.evaluate("() => globalThis.testClickArrived"):
                    return
                self.page.wait_for_timeout(100)
        raise AssertionError(f"{tries} clicks on {selector} ({text!r}) in {host} never reached it")

    def page_click(self, host: str, selector: str, text: str = "") -> bool:
        """element.click() from the page's main world on an element in the shadow root of `host`: a scripted click,
        as if the page had got hold of the element (the protocol hands it over). Returns the isTrusted of the click
        that reached the element (false)."""
        found = self._call(f"""(host, selector, text) => Array.from(chrome.dom.openOrClosedShadowRoot(
            document.querySelector(host)).querySelectorAll(selector)).find(e => e.textContent.includes(text))""",
                           [host, selector, text], by_value=False)
        node = self.cdp.send("DOM.describeNode", {"objectId": found["objectId"]})["node"]
        handed = self.cdp.send("DOM.resolveNode", {"backendNodeId": node["backendNodeId"],
                                                   "executionContextId": self.context_id(isolated=False)})
        result = self.cdp.send("Runtime.callFunctionOn", {"functionDeclaration": """function () {
            let trusted = null;
            this.addEventListener("click", (event) => { trusted = event.isTrusted; }, {once: true});
            this.click();
            return trusted; }""", "objectId": handed["object"]["objectId"], "returnByValue": True})
        return result["result"]["value"]

    def wait(self, function: str, *args, what: str, timeout: float = WAIT_S):
        """Poll evaluate(function, *args) until it is truthy; returns it."""
        deadline = time.monotonic() + timeout
        while not (value := self.evaluate(function, *args)):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}: {json.dumps(function)}")
            self.page.wait_for_timeout(250)
        return value



_worlds: dict = {}


def extension_world(page) -> ExtensionWorld:
    """The page's ExtensionWorld, made on first use and dropped when the page closes."""
    if page not in _worlds:
        _worlds[page] = ExtensionWorld(page)
        page.on("close", lambda closed: _worlds.pop(closed, None))
    return _worlds[page]
