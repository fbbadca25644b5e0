"""Drive Debian's firefox-esr headless for the extension's end-to-end tests, with no driver binary.

Two protocols, both built into Firefox:
- WebDriver BiDi (`--remote-debugging-port`) installs the add-on temporarily (`webExtension.install`), opens
  and navigates tabs (to extension pages too, with `--remote-allow-system-access`), runs script in web pages,
  moves the mouse and takes screenshots.
- BiDi does not reach extension documents (the background page, the popup, the options page), so script runs
  there through the Remote Debugging Protocol (`--start-debugger-server`), the one about:debugging's "Inspect"
  and web-ext use: a watcher on the add-on lists its documents, and each document's console evaluates script.
  The same protocol reaches the browser's own window (browser.xhtml, where the context menu lives): the parent
  process's target, as the Browser Toolbox uses it. (BiDi's `moz:scope: "chrome"` does too from Firefox 141 on,
  but ESR 140's `browsingContext.getTree` ignores it and lists tabs only.)

Every script returns JSON: the helpers wrap it in `JSON.stringify(await ...)` and parse the answer.
"""
from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import select
import socket
import subprocess
import time
from pathlib import Path

from websockets.sync.client import connect

FIREFOX = os.environ.get("FIREFOX", "/usr/bin/firefox-esr")
# The extension's floor, the oldest Firefox these tests support: one number, in the Firefox build script.
MIN_VERSION = int(re.search(r'FIREFOX_MIN_VERSION = "(\d+)', (Path(__file__).parents[1] / "extension" /
                                                           "build_firefox.mjs").read_text())[1])
STARTUP_TIMEOUT_S = 60
CALL_TIMEOUT_S = 60

# On top of the preferences the Remote Agent sets itself for automation (no updates, telemetry, safe browsing,
# remote settings): the debugger server without its prompt, and downloads saved without a dialog.
PREFS = {
    "devtools.debugger.remote-enabled": True,
    "devtools.chrome.enabled": True,
    "devtools.debugger.prompt-connection": False,
    "browser.download.folderList": 2,
    "browser.download.useDownloadDir": True,
    "browser.download.always_ask_before_handling_new_types": False,
    "browser.download.start_downloads_in_tmp_dir": False,
    "browser.aboutwelcome.enabled": False,
    "browser.startup.page": 0,
    "extensions.getAddons.showPane": False,
    "ui.prefersReducedMotion": 1,
}


class BrowserError(RuntimeError):
    """A protocol command failed, or a script threw in the browser."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def js_call(function: str, *args) -> str:
    """An expression that calls `function` (JS source) with JSON arguments and yields, as JSON, {value} with its
    awaited result or {error} with what it threw."""
    call = f"({function})(...{json.dumps(list(args))})"
    return (f"(async () => {{ try {{ return JSON.stringify({{value: await {call}}}); }}"
            f" catch (e) {{ return JSON.stringify({{error: `${{e}}\\n${{e && e.stack}}`}}); }} }})()")


def js_result(answer: str | None, function: str):
    """The value that js_call's expression reported, or BrowserError with what the script threw."""
    outcome = json.loads(answer) if isinstance(answer, str) else {}
    if "error" in outcome:
        raise BrowserError(f"script threw: {outcome['error']}\n{function}")
    return outcome.get("value")


class Bidi:
    """A WebDriver BiDi session over the browser's WebSocket."""

    def __init__(self, url: str):
        self.connection = contextlib.ExitStack()
        self.ws = self.connection.enter_context(connect(f"{url}/session", max_size=None, open_timeout=CALL_TIMEOUT_S))
        self.next_id = 0
        self.command("session.new", capabilities={"alwaysMatch": {"acceptInsecureCerts": False}})

    def command(self, method: str, **params) -> dict:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        deadline = time.monotonic() + CALL_TIMEOUT_S
        while True:
            message = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("id") != self.next_id:
                continue  # an event: none is subscribed to, so none is needed
            if message.get("type") == "error":
                raise BrowserError(f"{method}: {message.get('error')}: {message.get('message')}")
            return message["result"]

    def evaluate(self, context: str, function: str, *args):
        """Call `function` (JS source) in a browsing context; its result, through JSON."""
        result = self.command("script.evaluate", expression=js_call(function, *args), target={"context": context},
                              awaitPromise=True, resultOwnership="none")
        if result["type"] == "exception":
            details = result["exceptionDetails"]
            raise BrowserError(f"script threw: {details.get('text')}\n{function}")
        return js_result(result["result"].get("value"), function)

    def shadows(self, context: str, selector: str, function: str, *args):
        """Call function(roots, ...args) in the page, roots the shadow roots (open or closed) of the elements
        matching selector, in document order; its result, through JSON. BiDi serializes a host with its shadow
        root, closed ones included, and a call takes the root's sharedId as an argument."""
        hosts = f"Array.from(document.querySelectorAll({json.dumps(selector)}))"
        found = self.command("script.evaluate", expression=hosts, target={"context": context}, awaitPromise=False,
                             resultOwnership="none",
                             serializationOptions={"maxDomDepth": 0, "includeShadowTree": "all"})
        if found["type"] == "exception":
            raise BrowserError(f"script threw: {found['exceptionDetails'].get('text')}\n{selector}")
        roots = [{"sharedId": host["value"]["shadowRoot"]["sharedId"]} for host in found["result"]["value"]]
        call = f"""async (roots, args) => {{
            try {{ return JSON.stringify({{value: await ({function})(roots, ...JSON.parse(args))}}); }}
            catch (e) {{ return JSON.stringify({{error: `${{e}}\\n${{e && e.stack}}`}}); }} }}"""
        result = self.command("script.callFunction", functionDeclaration=call, target={"context": context},
                              arguments=[{"type": "array", "value": roots},
                                         {"type": "string", "value": json.dumps(list(args))}],
                              awaitPromise=True, resultOwnership="none")
        if result["type"] == "exception":
            raise BrowserError(f"script threw: {result['exceptionDetails'].get('text')}\n{function}")
        return js_result(result["result"].get("value"), function)

    def close(self):
        try:
            self.command("session.end")
        except Exception:
            pass
        self.connection.close()


class Rdp:
    """A Remote Debugging Protocol connection: length-prefixed JSON packets over TCP."""

    def __init__(self, port: int):
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            try:
                self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        self.buffer = b""
        self.events: list[dict] = []
        self.receive()  # the root actor's greeting

    def send(self, packet: dict):
        data = json.dumps(packet).encode()
        self.sock.sendall(str(len(data)).encode() + b":" + data)

    def receive(self, timeout: float = CALL_TIMEOUT_S) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            if b":" in self.buffer:
                length, rest = self.buffer.split(b":", 1)
                if len(rest) >= int(length):
                    self.buffer = rest[int(length):]
                    return json.loads(rest[:int(length)])
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.sock], [], [], left)[0]:
                raise TimeoutError("no answer from Firefox's debugger server")
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise BrowserError("Firefox closed the debugger connection")
            self.buffer += chunk

    def request(self, to: str, type: str, **params) -> dict:
        """Send a request and return its answer (a packet from `to` without a type); events are kept for later."""
        self.send({"to": to, "type": type, **params})
        while True:
            packet = self.receive()
            if packet.get("from") == to and ("type" not in packet or "error" in packet):
                if "error" in packet:
                    raise BrowserError(f"{type} to {to}: {packet['error']}: {packet.get('message')}")
                return packet
            self.events.append(packet)

    def poll(self, seconds: float = 0.0):
        """Move packets that have arrived (within `seconds`) into `events`."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                self.events.append(self.receive(timeout=max(0.0, deadline - time.monotonic())))
            except TimeoutError:
                return

    def long_string(self, grip):
        if isinstance(grip, dict) and grip.get("type") == "longString":
            return self.request(grip["actor"], "substring", start=0, end=grip["length"])["substring"]
        return grip

    def evaluate(self, console: str, expression: str):
        """Evaluate in a console actor's document, awaiting a promise result; the result's grip."""
        answer = self.request(console, "evaluateJSAsync", text=expression, mapped={"await": True})
        deadline = time.monotonic() + CALL_TIMEOUT_S
        while True:
            for i, packet in enumerate(self.events):
                if packet.get("type") == "evaluationResult" and packet.get("resultID") == answer["resultID"]:
                    del self.events[i]
                    if packet.get("hasException") or "exceptionMessage" in packet:
                        raise BrowserError(f"script threw: {self.long_string(packet.get('exceptionMessage'))}"
                                           f"\n{expression}")
                    if "result" not in packet:
                        raise BrowserError(f"no result in {packet}\n{expression}")
                    return self.long_string(packet["result"])
            if time.monotonic() > deadline:
                raise TimeoutError(f"no result for {expression}")
            self.poll(0.1)

    def close(self):
        self.sock.close()


class Addon:
    """The documents of one installed add-on (background page, extension pages in tabs), through a watcher."""

    def __init__(self, rdp: Rdp, addon_id: str):
        self.rdp, self.id = rdp, addon_id
        addons = rdp.request("root", "listAddons")["addons"]
        descriptor = next(a for a in addons if a["id"] == addon_id)
        self.watcher = rdp.request(descriptor["actor"], "getWatcher", isServerTargetSwitchingEnabled=True)["actor"]
        self.targets: dict[str, dict] = {}
        rdp.request(self.watcher, "watchTargets", targetType="frame")
        self.update()
        self.base_url = re.match(r"moz-extension://[^/]+/", self.document("_generated_background_page.html")["url"])[0]

    def update(self):
        self.rdp.poll()
        kept = []
        for packet in self.rdp.events:
            if packet.get("type") == "target-available-form":
                self.targets[packet["target"]["actor"]] = packet["target"]
            elif packet.get("type") == "target-destroyed-form":
                self.targets.pop(packet["target"]["actor"], None)
            else:
                kept.append(packet)
        self.rdp.events[:] = kept

    def document(self, path: str, timeout: float = STARTUP_TIMEOUT_S) -> dict:
        """The newest target whose URL ends with path (a watcher announces documents as they load)."""
        deadline = time.monotonic() + timeout
        while True:
            self.update()
            found = [t for t in self.targets.values() if t["url"].split("#")[0].endswith(path)]
            if found:
                return max(found, key=lambda t: t["innerWindowId"])
            if time.monotonic() > deadline:
                raise TimeoutError(f"no extension document {path} among {[t['url'] for t in self.targets.values()]}")
            self.rdp.poll(0.2)

    def evaluate(self, path: str, function: str, *args):
        """Call `function` (JS source) in the extension document at path; its result, through JSON."""
        return js_result(self.rdp.evaluate(self.document(path)["consoleActor"], js_call(function, *args)), function)

    def background(self, function: str, *args):
        return self.evaluate("_generated_background_page.html", function, *args)

    def url(self, path: str) -> str:
        return self.base_url + path


class Firefox:
    """firefox-esr, headless, on a fresh profile; `bidi` and `rdp` are connected; `close()` ends it."""

    def __init__(self, profile: Path, log_path: Path, downloads: Path, width: int = 1400, height: int = 900):
        if not Path(FIREFOX).exists():
            raise FileNotFoundError(f"{FIREFOX} is missing: install Debian's firefox-esr "
                                    "(apt-get install firefox-esr; `make test` does it as root)")
        version = subprocess.run([FIREFOX, "--version"], capture_output=True, text=True, timeout=30).stdout
        major = re.search(r"(\d+)\.", version)
        if not major or int(major[1]) < MIN_VERSION:
            raise BrowserError(f"{FIREFOX} is {version.strip() or 'of unknown version'}; the extension and these tests "
                               f"need Firefox {MIN_VERSION} or newer: sudo apt-get update && sudo apt-get install "
                               "firefox-esr (`make test` does it as root)")
        profile.mkdir(parents=True, exist_ok=True)
        downloads.mkdir(parents=True, exist_ok=True)
        prefs = dict(PREFS, **{"browser.download.dir": str(downloads)})
        (profile / "user.js").write_text("".join(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n"
                                                 for k, v in prefs.items()))
        self.downloads = downloads
        self.rdp_port = free_port()
        self.log = open(log_path, "wb")
        env = dict(os.environ, MOZ_HEADLESS_WIDTH=str(width), MOZ_HEADLESS_HEIGHT=str(height))
        self.process = subprocess.Popen(
            [FIREFOX, "--headless", "--no-remote", "--profile", str(profile), "--remote-debugging-port", "0",
             "--remote-allow-system-access", "--start-debugger-server", str(self.rdp_port), "about:blank"],
            stdout=self.log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.log_path = log_path
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not (found := re.search(rb"WebDriver BiDi listening on (ws://\S+)", log_path.read_bytes())):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise BrowserError(f"Firefox did not start its WebDriver BiDi server; see {log_path}")
            time.sleep(0.2)
        self.bidi = Bidi(found[1].decode())
        self.rdp = Rdp(self.rdp_port)
        self.chrome_console: str | None = None

    def install(self, path: Path) -> Addon:
        """Install the add-on at path temporarily (as about:debugging's "Load Temporary Add-on" does)."""
        installed = self.bidi.command("webExtension.install",
                                      extensionData={"type": "path", "path": str(path.resolve())})
        return Addon(self.rdp, installed["extension"])

    def chrome_evaluate(self, function: str, *args):
        """Call `function` (JS source) in the browser window itself (browser.xhtml), where its menus live; its
        result, through JSON."""
        if self.chrome_console is None:
            process = self.rdp.request("root", "getProcess", id=0)["processDescriptor"]["actor"]
            target = self.rdp.request(process, "getTarget")["process"]
            if not target.get("url", "").endswith("browser.xhtml"):
                raise BrowserError(f"the parent process's target is {target.get('url')}, not the browser window")
            self.chrome_console = target["consoleActor"]
        return js_result(self.rdp.evaluate(self.chrome_console, js_call(function, *args)), function)

    def new_tab(self, url: str | None = None) -> str:
        context = self.bidi.command("browsingContext.create", type="tab")["context"]
        if url:
            self.goto(context, url)
        return context

    def goto(self, context: str, url: str):
        self.bidi.command("browsingContext.navigate", context=context, url=url, wait="complete")

    def close_tab(self, context: str):
        self.bidi.command("browsingContext.close", context=context)

    def screenshot(self, context: str, path: Path, full_page: bool = False):
        params = {"context": context}
        if full_page:
            params["origin"] = "document"
        path.write_bytes(base64.b64decode(self.bidi.command("browsingContext.captureScreenshot", **params)["data"]))

    def close(self):
        for closer in (getattr(self, "bidi", None), getattr(self, "rdp", None)):
            if closer is not None:
                try:
                    closer.close()
                except Exception:
                    pass
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()

