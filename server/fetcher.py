"""Fetch a remote image for check-url without becoming an SSRF tool.

Rules, applied to the first URL and again to every redirect hop:
- http and https only, no credentials in the URL, and only the allowed ports (the relay: 80 and 443);
- the host is resolved once, and every address it resolves to must be public (no loopback, private,
  link-local, CGNAT, multicast, unspecified, reserved, cloud-metadata, or IPv6 that embeds IPv4);
- the connection goes to an address that was checked (no second lookup, so DNS rebinding cannot swap it),
  while the Host header and TLS SNI/certificate check use the name from the URL;
- at most `max_redirects` redirects, a byte cap while streaming, and one deadline for the whole fetch.
The fetched bytes are only handed to the detector; nothing here returns them to the client.
"""
from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Collection, List, NamedTuple, Optional
from urllib.parse import quote, urljoin, urlsplit

from .errors import ApiError

MAX_URL_LENGTH = 2048
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
USER_AGENT = "animeart-relay/0.1 (+image check)"
CHUNK = 64 * 1024

# Refused even where `ipaddress` calls them global: cloud metadata endpoints, CGNAT (Alibaba's metadata
# lives there), and IPv6 ranges that carry an IPv4 address (mapped, NAT64, 6to4, Teredo).
BLOCKED_NETWORKS = tuple(ipaddress.ip_network(net) for net in (
    "169.254.169.254/32", "fd00:ec2::254/128", "100.64.0.0/10", "192.0.0.0/24", "198.18.0.0/15",
    "::ffff:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48", "2002::/16", "2001::/32",
    "fec0::/10",  # deprecated site-local: still routed inside some networks, and `ipaddress` calls it global
))

# Host lookups run here so that a slow resolver cannot outlast the fetch deadline. A lookup cannot be
# cancelled, so at most RESOLVER_SLOTS of them may be running or waiting; past that, a URL check fails at once.
RESOLVER_THREADS = 4
RESOLVER_SLOTS = 2 * RESOLVER_THREADS
_resolver_pool = ThreadPoolExecutor(max_workers=RESOLVER_THREADS, thread_name_prefix="resolve")
_resolver_slots = threading.BoundedSemaphore(RESOLVER_SLOTS)


class Target(NamedTuple):
    """A URL that passed the checks: where to connect and what to ask for."""

    scheme: str
    host: str  # the name for the Host header and TLS (IDNA-encoded)
    port: int
    path: str  # path and query, as sent in the request line
    addresses: List[str]  # the checked addresses, in resolver order


def is_public_address(address: str) -> bool:
    """True if `address` is a globally routable unicast address that no blocked range contains."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if any(ip in net for net in BLOCKED_NETWORKS if net.version == ip.version):
        return False
    return ip.is_global and not (ip.is_multicast or ip.is_private or ip.is_loopback or ip.is_link_local
                                 or ip.is_reserved or ip.is_unspecified)


def is_host_name(host: str) -> bool:
    """An IP literal, or dot-separated labels of 1-63 letters, digits, '-' or '_' (253 characters at most).

    Python's IDNA codec maps some characters to spaces ("\u00af" -> "xn-- -3bb"); http.client refuses those.
    """
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    labels = host[:-1].split(".") if host.endswith(".") else host.split(".")
    return len(host) <= 253 and all(
        0 < len(label) <= 63 and all(ch.isascii() and (ch.isalnum() or ch in "-_") for ch in label)
        for label in labels)


def resolve(host: str, port: int) -> List[str]:
    """Every address `host` resolves to for a TCP connection (the one lookup per hop)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def open_connection(address: str, port: int, timeout: float) -> socket.socket:
    """A TCP connection to exactly `address` (an IP literal, so no lookup happens here)."""
    return socket.create_connection((address, port), timeout=timeout)


def tls_context() -> ssl.SSLContext:
    """Certificate and hostname verification on, system trust store."""
    return ssl.create_default_context()


def check_target(url: str, deadline: float, ports: Optional[Collection[int]] = None) -> Target:
    """Validate `url`, resolve its host once and refuse it unless every address is public.

    `ports`: the ports a URL may name (None: any).
    """
    if not isinstance(url, str) or not url.strip():
        raise ApiError(400, "url must be a non-empty string")
    url = url.strip()
    if len(url) > MAX_URL_LENGTH:
        raise ApiError(400, f"url longer than {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise ApiError(400, "malformed url: whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
        host = parts.hostname
    except ValueError as exc:
        raise ApiError(400, f"malformed url: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise ApiError(403, "only http and https urls are fetched")
    if not host:
        raise ApiError(400, "url has no host")
    if parts.username is not None or parts.password is not None:
        raise ApiError(403, "urls with credentials are refused")
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise ApiError(400, "malformed url: bad host name") from None
    if not is_host_name(host):
        raise ApiError(400, "malformed url: bad host name")
    port = port or (443 if parts.scheme == "https" else 80)
    if ports is not None and port not in ports:
        raise ApiError(403, f"url refused: port {port} is not allowed (allowed: {', '.join(map(str, ports))})")
    addresses = _resolve_before(host, port, deadline)
    if not addresses or not all(is_public_address(address) for address in addresses):
        raise ApiError(403, "url refused: its host is not a public internet address")
    # Non-ASCII characters are sent percent-encoded (UTF-8), as browsers do; everything else as given.
    path = quote((parts.path or "/") + (f"?{parts.query}" if parts.query else ""), safe="!#$%&'()*+,/:;=?@[]~")
    return Target(parts.scheme, host, port, path, addresses)


def fetch(url: str, *, max_bytes: int, timeout: float, max_redirects: int,
          ports: Optional[Collection[int]] = None) -> bytes:
    """The body of `url` after at most `max_redirects` checked redirects, each to one of `ports` (None: any).

    Raises ApiError: 400 malformed url, 403 refused by the guard, 502 remote failure (unreachable, non-200,
    too many redirects, larger than `max_bytes`), 504 when `timeout` seconds pass.
    """
    deadline = time.monotonic() + timeout
    for _ in range(max_redirects + 1):
        target = check_target(url, deadline, ports)
        status, location, body = _get(target, max_bytes, deadline)
        if status in REDIRECT_STATUSES and location:
            url = urljoin(url, location)
            continue
        if status != 200:
            raise ApiError(502, f"remote server answered HTTP {status}")
        return body
    raise ApiError(502, f"too many redirects (more than {max_redirects})")


def _resolve_before(host: str, port: int, deadline: float) -> List[str]:
    if not _resolver_slots.acquire(blocking=False):
        raise ApiError(503, "too many host lookups in progress, try again", {"Retry-After": "1"})
    future = _resolver_pool.submit(resolve, host, port)
    future.add_done_callback(lambda _: _resolver_slots.release())  # the slot is held until the lookup ends
    try:
        return future.result(timeout=_remaining(deadline))
    except FutureTimeout:
        raise ApiError(504, "timed out resolving the url's host") from None
    except OSError:
        raise ApiError(502, "cannot resolve the url's host") from None


def _get(target: Target, max_bytes: int, deadline: float):
    """One GET to a checked target: (status, Location header, body or b"" for redirects)."""
    connection = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    conn = connection(target, _remaining(deadline))
    # A hard stop: whatever the remote does (drip-feeding headers...), the socket closes at the deadline.
    watchdog = threading.Timer(_remaining(deadline), conn.abort)
    watchdog.daemon = True
    watchdog.start()
    try:
        conn.request("GET", target.path, headers={
            "User-Agent": USER_AGENT, "Accept": "image/*", "Accept-Encoding": "identity"})
        response = conn.getresponse()
        if conn.aborted:
            raise ApiError(504, "timed out fetching the url")
        if response.status in REDIRECT_STATUSES:
            return response.status, response.getheader("Location"), b""
        if response.status != 200:
            return response.status, None, b""
        declared = response.getheader("Content-Length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            raise ApiError(502, f"remote file larger than {max_bytes} bytes")
        return 200, None, _read_capped(conn, response, max_bytes, deadline)
    except ApiError:
        raise
    except (OSError, http.client.HTTPException, ValueError) as exc:
        if conn.aborted or time.monotonic() >= deadline or isinstance(exc, socket.timeout):
            raise ApiError(504, "timed out fetching the url") from None
        if isinstance(exc, ssl.SSLError):
            raise ApiError(502, "TLS error talking to the remote server") from None
        raise ApiError(502, "cannot fetch the url (connection failed or bad response)") from None
    finally:
        watchdog.cancel()
        conn.close()


def _read_capped(conn, response, max_bytes: int, deadline: float) -> bytes:
    chunks, size = [], 0
    while True:
        conn.pinned_sock.settimeout(_remaining(deadline))
        chunk = response.read1(CHUNK)  # one socket read at most, so the deadline is checked often
        if conn.aborted:
            raise ApiError(504, "timed out fetching the url")
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > max_bytes:
            raise ApiError(502, f"remote file larger than {max_bytes} bytes")
        chunks.append(chunk)


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise ApiError(504, "timed out fetching the url")
    return left


class _PinnedConnectionMixin:
    """Connects to the target's checked addresses, never to a fresh lookup of its name."""

    def _connect_pinned(self) -> socket.socket:
        error = None
        for address in self.target.addresses:
            try:
                return open_connection(address, self.target.port, self.timeout)
            except OSError as exc:
                error = exc
        raise error

    pinned_sock = None  # kept here: http.client drops `sock` once a response owns the connection
    aborted = False  # set by the watchdog: an end of stream after this is a timeout, not the end of the body

    def abort(self) -> None:
        """Shut the socket down (from the watchdog thread), waking any blocked read."""
        self.aborted = True
        if self.pinned_sock is not None:
            try:
                # The plain socket method: on a TLS socket it cuts the TCP stream without touching SSL state.
                socket.socket.shutdown(self.pinned_sock, socket.SHUT_RDWR)
            except OSError:
                pass


class _PinnedHTTPConnection(_PinnedConnectionMixin, http.client.HTTPConnection):
    def __init__(self, target: Target, timeout: float):
        super().__init__(target.host, target.port, timeout=timeout)
        self.target = target

    def connect(self):
        self.sock = self.pinned_sock = self._connect_pinned()


class _PinnedHTTPSConnection(_PinnedConnectionMixin, http.client.HTTPSConnection):
    def __init__(self, target: Target, timeout: float):
        super().__init__(target.host, target.port, timeout=timeout, context=tls_context())
        self.target = target

    def connect(self):
        sock = self._connect_pinned()
        try:
            self.sock = self.pinned_sock = self._context.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise
