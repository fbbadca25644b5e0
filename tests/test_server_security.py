"""What the security review of the relay found (issue 16): DNS rebinding on a non-loopback bind, brute-forced
tokens, the memory one batch may hold, ports and ranges of check-url, /metrics and extension origins."""
import pytest

from server.__main__ import build_config, parse_args
from server.app import create_app
from server.config import Config
from server_support import ImageServer, no_outside_network, pretend_public, sample_images

__all__ = ["no_outside_network"]

TOKEN = "a-long-enough-token-0123"
IMAGE = sample_images()[0].read_bytes()


def make_client(**settings):
    return create_app(Config(**{"rate_limit": "off", "batch_rate_limit": "off", **settings})).test_client()


def error_of(response):
    return response.status_code, response.get_json()["error"]["reason"]


# --- DNS rebinding with --host 0.0.0.0 ------------------------------------------------------------------

@pytest.mark.parametrize("environ", [
    {},
    {"ANIMEART_RELAY_TOKEN": TOKEN},
    {"ANIMEART_RELAY_TRUSTED_HOSTS": "relay.lan"},
    {"ANIMEART_RELAY_TRUSTED_HOSTS": "*", "ANIMEART_RELAY_TOKEN": TOKEN},
])
def test_non_loopback_bind_needs_trusted_names_and_a_token(environ):
    with pytest.raises(ValueError, match="TRUSTED_HOSTS"):
        build_config(parse_args(["--host", "0.0.0.0"]), environ)


def test_non_loopback_bind_with_names_and_token_starts():
    config = build_config(parse_args(["--host", "0.0.0.0"]),
                          {"ANIMEART_RELAY_TRUSTED_HOSTS": "relay.lan", "ANIMEART_RELAY_TOKEN": TOKEN})
    assert config.trusted_hosts == ("relay.lan",) and config.token == TOKEN
    assert build_config(parse_args([]), {}).trusted_hosts == ("localhost", "127.0.0.1")


def test_rebinding_page_is_not_its_own_origin_when_the_host_check_is_off():
    """With the Host check off ("*"), a page on evil.example re-pointed at the relay sends Host and Origin
    evil.example: the Origin must be compared with configured names, not with the Host header."""
    client = make_client(trusted_hosts=("*",))
    headers = {"Host": "evil.example:8765", "Origin": "http://evil.example:8765"}
    assert error_of(client.post("/api/v1/check?tta=0", data=IMAGE, content_type="image/jpeg",
                                headers=headers)) == (403, "origin not allowed")


def test_demo_page_origin_under_a_configured_name():
    client = make_client(trusted_hosts=("relay.lan",))
    headers = {"Host": "relay.lan:8765", "Origin": "http://relay.lan:8765"}
    response = client.post("/api/v1/check?tta=0", data=IMAGE, content_type="image/jpeg", headers=headers)
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "http://relay.lan:8765"


# --- tokens ----------------------------------------------------------------------------------------------

def test_short_tokens_are_refused():
    with pytest.raises(ValueError, match="at least 16"):
        Config(token="short-token")
    with pytest.raises(ValueError, match="at least 16"):
        Config.from_env({"ANIMEART_RELAY_TOKEN": "0123456789abcde"})


def test_wrong_tokens_are_rate_limited_per_client():
    client = make_client(token=TOKEN, auth_failure_limit="3 per minute")

    def post(token, address="10.1.1.1"):
        return client.post("/api/v1/check?tta=0", data=IMAGE, content_type="image/jpeg",
                           headers={"Authorization": f"Bearer {token}"}, environ_base={"REMOTE_ADDR": address})
    assert [post(f"guess-{n:016d}").status_code for n in range(4)] == [401, 401, 401, 429]
    assert post(TOKEN, address="10.2.2.2").status_code == 200
    assert post("wrong-but-long-enough", address="10.2.2.2").status_code == 401


def test_the_right_token_passes_from_an_address_locked_out_by_wrong_ones():
    # Issue 21: behind a proxy every client shares one address, and any one of them could lock everyone out.
    client = make_client(token=TOKEN, auth_failure_limit="3 per minute")

    def post(token, address="10.1.1.1"):
        return client.post("/api/v1/check?tta=0", data=IMAGE, content_type="image/jpeg",
                           headers={"Authorization": f"Bearer {token}"}, environ_base={"REMOTE_ADDR": address})
    assert [post(f"guess-{n:016d}").status_code for n in range(4)] == [401, 401, 401, 429]
    assert post(TOKEN).status_code == 200
    assert post("guess-again-0123456").status_code == 429


def test_x_forwarded_for_names_the_client_only_when_proxies_are_trusted():
    def lock_out(client):
        """3 wrong tokens from a client 203.0.113.7 behind the proxy 127.0.0.1; then what a neighbour gets."""
        for n in range(3):
            client.post("/api/v1/check", data=IMAGE, content_type="image/jpeg",
                        headers={"Authorization": f"Bearer guess-{n:016d}", "X-Forwarded-For": "203.0.113.7"})
        return client.post("/api/v1/check", data=IMAGE, content_type="image/jpeg",
                           headers={"Authorization": "Bearer neighbour-typo-0123", "X-Forwarded-For": "198.51.100.9"})
    assert lock_out(make_client(token=TOKEN, auth_failure_limit="3 per minute")).status_code == 429  # one address
    trusting = make_client(token=TOKEN, auth_failure_limit="3 per minute", trusted_proxies=1)
    assert lock_out(trusting).status_code == 401  # the neighbour is its own client


def test_metrics_need_the_token_when_one_is_set():
    client = make_client(token=TOKEN)
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert client.get("/healthz").status_code == 200
    assert make_client().get("/metrics").status_code == 200


def test_extension_ids_can_be_allow_listed():
    client = make_client(cors_extension_ids=("abcdefghijklmnopabcdefghijklmnop",))
    allowed = client.get("/api/v1/model", headers={"Origin": "chrome-extension://abcdefghijklmnopabcdefghijklmnop"})
    assert allowed.status_code == 200
    other = client.get("/api/v1/model", headers={"Origin": "chrome-extension://ponmlkjihgfedcbaponmlkjihgfedcba"})
    assert error_of(other) == (403, "origin not allowed")


# --- check-url and batches -------------------------------------------------------------------------------

def test_check_url_allows_ports_80_and_443_only_by_default():
    client = make_client()
    assert Config().fetch_ports == (80, 443)
    status, reason = error_of(client.post("/api/v1/check-url", json={"url": "http://8.8.8.8:8080/x.png"}))
    assert (status, "port 8080") == (403, reason[reason.index("port"):][:9])


def test_batch_holds_at_most_its_byte_budget_of_remote_files(monkeypatch):
    """Four fetches of one real image with a budget of 2.5 images: two are checked, two refused (413)."""
    pretend_public(monkeypatch, {})
    with ImageServer(IMAGE) as site:
        client = make_client(fetch_ports=(site.server_address[1],), max_batch_bytes=len(IMAGE) * 5 // 2)
        response = client.post("/api/v1/check-batch?tta=0", json={"urls": [f"{site.base}/image"] * 4})
    results = response.get_json()["results"]
    assert sorted(r["ok"] for r in results) == [False, False, True, True]
    assert {r["error"]["code"] for r in results if not r["ok"]} == {413}
