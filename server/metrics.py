"""Request counters and latency histograms, rendered in the Prometheus text exposition format.

Figures are per process: with several gunicorn workers each worker answers /metrics with its own.
"""
from __future__ import annotations

import bisect
import threading
from collections import Counter, defaultdict
from typing import Dict, Mapping, Tuple

# Upper bounds (seconds) of the latency histogram's buckets; +Inf is implicit.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """Thread-safe counters for the relay; `render()` gives the /metrics page."""

    def __init__(self):
        self._lock = threading.Lock()
        self.requests: Counter = Counter()  # (endpoint, code) -> answers
        self.errors: Counter = Counter()  # code -> error answers, batch items included
        self.cache: Counter = Counter()  # "hit" / "miss" -> lookups
        self._bucket_counts: Dict[str, list] = defaultdict(lambda: [0] * (len(BUCKETS) + 1))
        self._latency_sum: Counter = Counter()

    def observe_request(self, endpoint: str, code: int, seconds: float) -> None:
        """Count one answered request and its latency; error codes also count as errors."""
        with self._lock:
            self.requests[(endpoint, code)] += 1
            self._bucket_counts[endpoint][bisect.bisect_left(BUCKETS, seconds)] += 1
            self._latency_sum[endpoint] += seconds
            if code >= 400:
                self.errors[code] += 1

    def observe_item_error(self, code: int) -> None:
        """Count an error reported for one item of a batch (the batch itself answers 200)."""
        with self._lock:
            self.errors[code] += 1

    def observe_cache(self, hit: bool) -> None:
        with self._lock:
            self.cache["hit" if hit else "miss"] += 1

    def render(self, gauges: Mapping[str, Tuple[float, str]], info: Mapping[str, str]) -> str:
        """The exposition text; `gauges` are name -> (value, help), `info` labels relay_model_info."""
        with self._lock:
            lines = _header("relay_requests_total", "counter", "HTTP requests answered, by endpoint and status.")
            for (endpoint, code), n in sorted(self.requests.items()):
                lines.append(f"relay_requests_total{_labels(endpoint=endpoint, code=code)} {n}")
            lines += _header("relay_request_duration_seconds", "histogram", "Time to answer a request.")
            for endpoint, counts in sorted(self._bucket_counts.items()):
                cumulative = 0
                for bound, count in zip(BUCKETS + (float("inf"),), counts):
                    cumulative += count
                    le = "+Inf" if bound == float("inf") else repr(bound)
                    lines.append(f"relay_request_duration_seconds_bucket{_labels(endpoint=endpoint, le=le)} "
                                 f"{cumulative}")
                lines.append(f"relay_request_duration_seconds_sum{_labels(endpoint=endpoint)} "
                             f"{self._latency_sum[endpoint]:.6f}")
                lines.append(f"relay_request_duration_seconds_count{_labels(endpoint=endpoint)} {cumulative}")
            lines += _header("relay_errors_total", "counter", "Error answers by status code, batch items included.")
            for code, n in sorted(self.errors.items()):
                lines.append(f"relay_errors_total{_labels(code=code)} {n}")
            lines += _header("relay_cache_hits_total", "counter", "Result cache hits.")
            lines.append(f"relay_cache_hits_total {self.cache['hit']}")
            lines += _header("relay_cache_misses_total", "counter", "Result cache misses.")
            lines.append(f"relay_cache_misses_total {self.cache['miss']}")
        for name, (value, help_text) in sorted(gauges.items()):
            lines += _header(name, "gauge", help_text)
            lines.append(f"{name} {value}")
        lines += _header("relay_model_info", "gauge", "The model this process serves (value is always 1).")
        lines.append(f"relay_model_info{_labels(**info)} 1")
        return "\n".join(lines) + "\n"


def _header(name: str, kind: str, help_text: str) -> list:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]


def _labels(**labels) -> str:
    escaped = (str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
               for value in labels.values())
    return "{" + ",".join(f'{name}="{value}"' for name, value in zip(labels, escaped)) + "}"
