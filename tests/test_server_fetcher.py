"""The SSRF guard of check-url: address rules, redirects, DNS rebinding, byte cap, deadline, TLS pinning.

Only loopback traffic happens here: a local HTTP server on 127.0.0.2 stands in for "the internet"
(`pretend_public` lets it count as public within a test), and every name resolution is faked.
"""
import shutil
import ssl
import subprocess
import threading
import time
from http.server import ThreadingHTTPServer

import pytest

from server import fetcher
from server.errors import ApiError
from server_support import TEST_SERVER_IP, ImageServer, _Handler, no_outside_network, pretend_public, sample_images

__all__ = ["no_outside_network"]  # the autouse fixture, imported so that pytest applies it here

PUBLIC_IP = "93.184.215.14"  # a global unicast address; never contacted, connections to it are faked


@pytest.fixture(scope="module")
def image_bytes():
    return sample_images()[0].read_bytes()


@pytest.fixture
def site(image_bytes):
    with ImageServer(image_bytes) as server:
        yield server


def fetch(url, max_bytes=20 * 2 ** 20, timeout=5.0, max_redirects=3):
    return fetcher.fetch(url, max_bytes=max_bytes, timeout=timeout, max_redirects=max_redirects)


@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.1.2.3", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254", "169.254.1.1",
    "100.64.0.1", "100.100.100.200", "0.0.0.0", "224.0.0.1", "239.255.255.250", "255.255.255.255",
    "240.0.0.1", "192.0.0.170", "198.18.0.1", "192.0.2.1",
    "::1", "::", "fe80::1", "fc00::1", "fd00:ec2::254", "ff02::1", "::ffff:127.0.0.1", "::ffff:8.8.8.8",
    "64:ff9b::a00:1", "2002:7f00:1::", "2001:0:4136:e378::1", "2001:db8::1", "fec0::1", "feff::1", "not-an-ip",
])
def test_non_public_addresses_are_refused(address):
    assert not fetcher.is_public_address(address)


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.215.14", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(address):
    assert fetcher.is_public_address(address)


@pytest.mark.parametrize("url, code", [
    ("file:///etc/passwd", 403), ("gopher://127.0.0.1/", 403), ("ftp://8.8.8.8/x.png", 403),
    ("http://user:pw@8.8.8.8/x.png", 403), ("http:///x.png", 400), ("http://8.8.8.8:99999/", 400),
    ("http://8.8.8.8/a b", 400), ("http://8.8.8.8/\r\nHost: evil", 400), ("", 400), (None, 400),
    ("http://8.8.8.8/" + "a" * 3000, 400), ("http://\u00af/", 400), ("http://a..b/", 400), ("http://a b.c/", 400),
    ("http://127.0.0.1/", 403), ("http://localhost/", 403), ("http://2130706433/", 403),
    ("http://0x7f.1/", 403), ("http://[::1]/", 403), ("http://[::ffff:127.0.0.1]/", 403),
    ("http://169.254.169.254/latest/meta-data/", 403), ("http://[fd00:ec2::254]/", 403),
    ("http://10.0.0.1/", 403), ("http://100.64.1.1/", 403), ("http://0.0.0.0/", 403),
])
def test_bad_or_internal_urls_are_refused_before_connecting(url, code, monkeypatch):
    connections = []
    monkeypatch.setattr(fetcher, "open_connection", lambda *args: connections.append(args))
    with pytest.raises(ApiError) as err:
        fetch(url)
    assert err.value.code == code
    assert connections == []


def test_host_with_any_internal_address_is_refused(monkeypatch):
    pretend_public(monkeypatch, {"mixed.test": [PUBLIC_IP, "10.0.0.1"]})
    with pytest.raises(ApiError) as err:
        fetch("http://mixed.test/x.png")
    assert err.value.code == 403


def test_public_image_is_fetched_with_the_right_host_header(site, image_bytes, monkeypatch):
    port = site.server_address[1]
    pretend_public(monkeypatch, {"images.test": [TEST_SERVER_IP]})
    assert fetch(f"http://images.test:{port}/image?size=large#frag") == image_bytes
    assert site.requests == [("/image?size=large", f"images.test:{port}")]


def test_non_ascii_paths_are_sent_percent_encoded(site, monkeypatch):
    pretend_public(monkeypatch, {})
    with pytest.raises(ApiError) as err:
        fetch(f"{site.base}/bilder/mädchen.png?q=ö")
    assert err.value.code == 502  # the local site has no such file
    assert site.requests[0][0] == "/bilder/m%C3%A4dchen.png?q=%C3%B6"


@pytest.mark.parametrize("target", [
    "http://127.0.0.1:{port}/image", "http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/image",
    "http://[::1]:{port}/image", "file:///etc/passwd",
])
def test_redirects_to_internal_addresses_are_refused(site, target, monkeypatch):
    pretend_public(monkeypatch, {})
    connections = []
    real_open = fetcher.open_connection
    monkeypatch.setattr(fetcher, "open_connection", lambda *a: connections.append(a[0]) or real_open(*a))
    location = target.format(port=site.server_address[1])
    with pytest.raises(ApiError) as err:
        fetch(f"{site.base}/redirect?to={location}")
    assert err.value.code == 403
    assert connections == [TEST_SERVER_IP]  # the first hop only; the refused hop is never contacted


def test_redirects_are_followed_up_to_the_limit(site, image_bytes, monkeypatch):
    pretend_public(monkeypatch, {})
    assert fetch(f"{site.base}/chain/3", max_redirects=3) == image_bytes
    with pytest.raises(ApiError) as err:
        fetch(f"{site.base}/chain/4", max_redirects=3)
    assert err.value.code == 502 and "redirects" in err.value.reason


def test_dns_rebinding_connects_to_the_checked_address(site, image_bytes, monkeypatch):
    """The name resolves to a public address first and to 127.0.0.1 afterwards: the fetch must use the first."""
    answers = iter([[PUBLIC_IP], ["127.0.0.1"], ["127.0.0.1"]])
    lookups, connections = [], []
    monkeypatch.setattr(fetcher, "resolve", lambda host, port: lookups.append(host) or next(answers))
    real_open = fetcher.open_connection

    def fake_open(address, port, timeout):  # stands in for the public host: records, then reaches the local site
        connections.append(address)
        return real_open(TEST_SERVER_IP, site.server_address[1], timeout)

    monkeypatch.setattr(fetcher, "open_connection", fake_open)
    assert fetch("http://rebind.test/image") == image_bytes
    assert lookups == ["rebind.test"]
    assert connections == [PUBLIC_IP]


def test_dns_rebinding_on_a_redirect_hop_is_refused(site, monkeypatch):
    answers = iter([[PUBLIC_IP], ["127.0.0.1"]])
    monkeypatch.setattr(fetcher, "resolve", lambda host, port: next(answers))
    real_open = fetcher.open_connection
    connections = []

    def fake_open(address, port, timeout):
        connections.append(address)
        return real_open(TEST_SERVER_IP, site.server_address[1], timeout)

    monkeypatch.setattr(fetcher, "open_connection", fake_open)
    with pytest.raises(ApiError) as err:
        fetch("http://rebind.test/redirect?to=http://rebind.test/image")
    assert err.value.code == 403
    assert connections == [PUBLIC_IP]


def test_failed_connection_does_not_fall_back_to_a_new_lookup(monkeypatch):
    lookups = []
    monkeypatch.setattr(fetcher, "resolve", lambda host, port: lookups.append(host) or [PUBLIC_IP])

    def refuse(address, port, timeout):
        assert address == PUBLIC_IP
        raise ConnectionRefusedError

    monkeypatch.setattr(fetcher, "open_connection", refuse)
    with pytest.raises(ApiError) as err:
        fetch("http://down.test/image")
    assert err.value.code == 502
    assert lookups == ["down.test"]


@pytest.mark.parametrize("path, code, words", [
    ("/status/404", 502, "HTTP 404"), ("/status/500", 502, "HTTP 500"),
    ("/big-declared", 502, "larger than"), ("/big-undeclared", 502, "larger than"),
])
def test_remote_failures_are_bad_gateway(site, path, code, words, monkeypatch):
    pretend_public(monkeypatch, {})
    with pytest.raises(ApiError) as err:
        fetch(site.base + path, max_bytes=1_000_000)
    assert err.value.code == code and words in err.value.reason


def test_connection_refused_is_bad_gateway(monkeypatch):
    pretend_public(monkeypatch, {})
    with ThreadingHTTPServer((TEST_SERVER_IP, 0), _Handler) as closed:
        port = closed.server_address[1]
    with pytest.raises(ApiError) as err:
        fetch(f"http://{TEST_SERVER_IP}:{port}/image")
    assert err.value.code == 502


@pytest.mark.parametrize("path", ["/drip", "/drip-headers"])
def test_total_deadline_holds_against_trickling_servers(site, path, monkeypatch):
    pretend_public(monkeypatch, {})
    start = time.monotonic()
    with pytest.raises(ApiError) as err:
        fetch(site.base + path, timeout=1.0)
    assert err.value.code == 504
    assert time.monotonic() - start < 2.0


def test_slow_name_resolution_counts_against_the_deadline(monkeypatch):
    monkeypatch.setattr(fetcher, "resolve", lambda host, port: time.sleep(3) or [PUBLIC_IP])
    start = time.monotonic()
    with pytest.raises(ApiError) as err:
        fetch("http://slow-dns.test/image", timeout=0.5)
    assert err.value.code == 504
    assert time.monotonic() - start < 1.5


def test_host_lookups_are_bounded_and_fail_fast(monkeypatch):
    """A resolver that hangs: lookups beyond the bound fail at once (503) instead of queueing without end."""
    release, calls = threading.Event(), []

    def hanging_resolve(host, port):
        calls.append(host)
        release.wait(10)
        return [PUBLIC_IP]
    monkeypatch.setattr(fetcher, "resolve", hanging_resolve)
    codes = []

    def attempt(number):
        with pytest.raises(ApiError) as err:
            fetch(f"http://slow{number}.test/image", timeout=0.5)
        codes.append(err.value.code)
    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(fetcher.RESOLVER_SLOTS + 4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    release.set()
    time.sleep(0.5)  # lookups still queued would run now
    assert sorted(set(codes)) == [503, 504] and codes.count(503) >= 4
    assert len(calls) <= fetcher.RESOLVER_SLOTS


@pytest.mark.parametrize("url", ["http://8.8.8.8:8080/x.png", "https://8.8.8.8:22/", "http://8.8.8.8:443/"])
def test_only_allowed_ports_are_fetched(url, monkeypatch):
    connections = []
    monkeypatch.setattr(fetcher, "open_connection", lambda *args: connections.append(args))
    with pytest.raises(ApiError) as err:
        fetcher.fetch(url, max_bytes=1000, timeout=1.0, max_redirects=0, ports=(80, 8443))
    assert err.value.code == 403 and "port" in err.value.reason
    assert connections == []


def test_redirect_to_another_port_is_refused(site, monkeypatch):
    pretend_public(monkeypatch, {})
    port = site.server_address[1]
    with pytest.raises(ApiError) as err:
        fetcher.fetch(f"{site.base}/redirect?to=http://{TEST_SERVER_IP}:22/", max_bytes=10 ** 6, timeout=5.0,
                      max_redirects=3, ports=(port,))
    assert err.value.code == 403 and "port 22" in err.value.reason
    assert [path for path, _ in site.requests] == [f"/redirect?to=http://{TEST_SERVER_IP}:22/"]


# --- HTTPS: the connection goes to the pinned address, TLS still verifies the URL's name ---------------

@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for pinned.test (made with the openssl command)."""
    if shutil.which("openssl") is None:
        pytest.fail("the openssl command is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=pinned.test", "-addext", "subjectAltName=DNS:pinned.test",
                    "-keyout", str(folder / "key.pem"), "-out", str(folder / "cert.pem")],
                   check=True, capture_output=True)
    return folder / "cert.pem", folder / "key.pem"


@pytest.fixture
def tls_site(image_bytes, certificate, monkeypatch):
    cert, key = certificate
    server = ImageServer(image_bytes)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setattr(fetcher, "tls_context", lambda: ssl.create_default_context(cafile=str(cert)))
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("name, ok", [("pinned.test", True), ("other.test", False)])
def test_https_verifies_the_url_name_on_the_pinned_address(tls_site, image_bytes, name, ok, monkeypatch):
    pretend_public(monkeypatch, {name: [TEST_SERVER_IP]})
    url = f"https://{name}:{tls_site.server_address[1]}/image"
    if ok:
        assert fetch(url) == image_bytes
        assert tls_site.requests == [("/image", f"{name}:{tls_site.server_address[1]}")]
    else:
        with pytest.raises(ApiError) as err:
            fetch(url)
        assert err.value.code == 502 and "TLS" in err.value.reason
