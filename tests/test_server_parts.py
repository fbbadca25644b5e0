"""The relay's small parts on their own: config from the environment, the LRU cache, the metrics text."""
import re

import pytest

from server.cache import ResultCache
from server.config import Config
from server.metrics import Metrics


def test_config_defaults_are_safe():
    config = Config.from_env({})
    assert config.max_body_bytes == 20 * 1024 * 1024
    assert config.max_batch_items == 16
    assert config.token is None
    assert config.trusted_hosts == ("localhost", "127.0.0.1")
    assert config.allow_url_fetch is True
    assert config.fetch_max_redirects == 3


def test_config_from_environment_and_overrides():
    env = {"ANIMEART_RELAY_TOKEN": "abcdefghijklmnop", "ANIMEART_RELAY_ALLOW_URL_FETCH": "off",
           "ANIMEART_RELAY_MAX_BODY_BYTES": "1000", "ANIMEART_RELAY_FETCH_TIMEOUT_S": "2.5",
           "ANIMEART_RELAY_CORS_ORIGINS": "https://a.example, https://b.example",
           "ANIMEART_RELAY_MODEL": "", "UNRELATED": "x"}
    config = Config.from_env(env, max_body_bytes=2000, model=None)
    assert config.token == "abcdefghijklmnop"
    assert config.allow_url_fetch is False
    assert config.max_body_bytes == 2000  # the override wins
    assert config.fetch_timeout_s == 2.5
    assert config.cors_origins == ("https://a.example", "https://b.example")
    assert config.model is None


@pytest.mark.parametrize("name, value", [("ALLOW_URL_FETCH", "perhaps"), ("MAX_BODY_BYTES", "lots")])
def test_config_rejects_bad_values_by_name(name, value):
    with pytest.raises(ValueError, match="ANIMEART_RELAY_" + name):
        Config.from_env({"ANIMEART_RELAY_" + name: value})


def test_cache_evicts_the_least_recently_used():
    cache = ResultCache(2)
    cache.put("a", {"v": 1})
    cache.put("b", {"v": 2})
    assert cache.get("a") == {"v": 1}  # "a" is now the most recent
    cache.put("c", {"v": 3})
    assert cache.get("b") is None
    assert cache.get("a") == {"v": 1} and cache.get("c") == {"v": 3}
    assert len(cache) == 2


def test_cache_hands_out_copies():
    cache = ResultCache(4)
    value = {"label": "ai"}
    cache.put("k", value)
    value["label"] = "changed"
    cache.get("k")["label"] = "changed too"
    assert cache.get("k") == {"label": "ai"}


def test_cache_of_size_zero_stores_nothing():
    cache = ResultCache(0)
    cache.put("k", {"v": 1})
    assert cache.get("k") is None and len(cache) == 0


def test_metrics_histogram_and_label_escaping():
    metrics = Metrics()
    for seconds in (0.001, 0.02, 0.02, 3.0, 60.0):
        metrics.observe_request("/api/v1/check", 200, seconds)
    metrics.observe_request("/api/v1/check", 413, 0.001)
    text = metrics.render({"relay_cache_entries": (5, "Entries.")}, {"model_version": 'odd"ver\\sion\n'})
    buckets = dict(re.findall(r'relay_request_duration_seconds_bucket\{endpoint="/api/v1/check",le="([^"]+)"\} (\d+)',
                              text))
    assert (buckets["0.005"], buckets["0.025"], buckets["2.5"], buckets["5.0"], buckets["+Inf"]) == \
        ("2", "4", "4", "5", "6")
    assert 'relay_errors_total{code="413"} 1' in text
    assert "relay_cache_entries 5" in text
    assert 'relay_model_info{model_version="odd\\"ver\\\\sion\\n"} 1' in text
    assert "# TYPE relay_request_duration_seconds histogram" in text


@pytest.mark.parametrize("settings, words", [({"rate_limit": "lots"}, "rate_limit"),
                                             ({"batch_rate_limit": "5 per fortnight"}, "batch_rate_limit"),
                                             ({"max_batch_items": 0}, "max_batch_items"),
                                             ({"fetch_timeout_s": -1}, "fetch_timeout_s")])
def test_config_refuses_nonsense(settings, words):
    with pytest.raises(ValueError, match=words):
        Config(**settings)
