"""waitress with guards against clients that hold connections open without finishing requests.

waitress reads each request whole before a thread serves it (so slow clients cannot take the threads), but it
stops accepting at 100 open connections and closes an idle one only after `channel_timeout`, which any byte
resets: 100 half-open connections that send one header line every 20 s shut everyone else out. Here:

- a connection that is not being served must finish its next request's headers within `header_timeout_s` of
  its opening or of its last answer (this is also the keep-alive idle limit); a body being uploaded is
  governed by `channel_timeout` as before;
- a new connection beyond `per_client` from one address, or beyond `max_connections` in all, closes the
  connection (of that address, or of all) that has waited longest for a request and is not being served.
  Connections being served are never closed; when every candidate is busy the new connection is closed.

The sweep runs every second on waitress's event loop thread, where channels are created and read. The errors
waitress answers itself, before the app (a body over its size limit, a malformed request), are the API's JSON
error `{"error": {"code", "reason"}}` too, not waitress's plain text.
"""
from __future__ import annotations

import json
import logging

from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask, ThreadedTaskDispatcher

log = logging.getLogger("server")


class JsonErrorTask(ErrorTask):
    """waitress's own error answer, as the API's JSON error (reason: waitress's words, e.g. "request entity too
    large")."""

    def execute(self):
        error = self.request.error
        body = json.dumps({"error": {"code": error.code, "reason": error.reason.lower()}}).encode()
        self.status = f"{error.code} {error.reason}"
        self.response_headers.extend([("Content-Type", "application/json"), ("X-Content-Type-Options", "nosniff")])
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class GuardedChannel(HTTPChannel):
    """An HTTPChannel that notes since when it has waited for a request, asks its server for room, and answers
    waitress's own errors in JSON."""

    error_task_class = JsonErrorTask

    def __init__(self, server, sock, addr, adj, map=None):
        super().__init__(server, sock, addr, adj, map=map)
        self.waiting_since = self.creation_time
        server.make_room(self)

    def busy(self) -> bool:
        """Serving a request, reading a body after complete headers, or still sending an answer."""
        reading_body = self.request is not None and self.request.headers_finished
        return bool(self.requests or reading_body or self.total_outbufs_len)


class GuardedServer(TcpWSGIServer):
    """TcpWSGIServer with a header deadline and per-client / total connection caps that evict idle ones."""

    channel_class = GuardedChannel

    def __init__(self, application, *, max_connections: int, per_client: int, header_timeout_s: float, **kw):
        self.max_connections = max_connections
        self.per_client = per_client
        self.header_timeout_s = header_timeout_s
        super().__init__(application, **kw)

    def make_room(self, new: GuardedChannel) -> None:
        """Keep at most `per_client` connections per address and `max_connections` in all, `new` included."""
        for scope, cap in (("per client", self.per_client), ("in all", self.max_connections)):
            crowd = [channel for channel in self.active_channels.values() if channel is not new and
                     (scope == "in all" or channel.addr[0] == new.addr[0])]
            if len(crowd) < cap:
                continue
            idle = [channel for channel in crowd if not channel.busy()]
            victim = min(idle, key=lambda channel: channel.waiting_since) if idle else new
            log.debug("%s connections %s: closing %s", cap, scope,
                     "the one waiting longest" if idle else "the new one (all others are busy)")
            victim.handle_close()
            if victim is new:
                return

    def maintenance(self, now: float) -> None:
        """waitress's idle sweep, plus: close connections that have not finished their request's headers in
        time."""
        super().maintenance(now)
        for channel in list(self.active_channels.values()):
            if channel.busy():
                channel.waiting_since = now
            elif now - channel.waiting_since > self.header_timeout_s:
                channel.will_close = True


def serve(app, *, host: str, port: int, threads: int, max_connections: int, per_client: int,
          header_timeout_s: float, **settings) -> None:
    """Serve `app` with GuardedServer on every address `host` resolves to, until SystemExit."""
    adj = Adjustments(host=host, port=port, threads=threads, connection_limit=max_connections + 16,
                      cleanup_interval=1, **settings)
    socket_map: dict = {}
    dispatcher = ThreadedTaskDispatcher()
    dispatcher.set_thread_count(threads)
    servers = [GuardedServer(app, map=socket_map, dispatcher=dispatcher, adj=adj, sockinfo=sockinfo,
                             max_connections=max_connections, per_client=per_client,
                             header_timeout_s=header_timeout_s) for sockinfo in adj.listen]
    servers[0].run()  # one event loop over the shared map serves every listening socket
