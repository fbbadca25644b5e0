"""server/openapi.yaml stays true: the same routes as the app, and real answers fit the documented schemas."""
import io
import re
from pathlib import Path

import pytest
import yaml

from server import Config, create_app
from server_support import no_outside_network, sample_images

__all__ = ["no_outside_network"]

SPEC = yaml.safe_load((Path(__file__).resolve().parents[1] / "server" / "openapi.yaml").read_text())
AUTOMATIC_METHODS = {"HEAD", "OPTIONS"}  # added by Flask to every GET / every route


@pytest.fixture(scope="module")
def client():
    return create_app(Config(rate_limit="off", batch_rate_limit="off", explain_rate_limit="off")).test_client()


def flask_routes():
    app = create_app(Config())
    routes = set()
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)  # <path:filename> -> {filename}
        for method in rule.methods - AUTOMATIC_METHODS:
            routes.add((path, method.lower()))
    return routes


def documented_routes():
    return {(path, method) for path, item in SPEC["paths"].items() for method in item
            if method in ("get", "post", "put", "delete", "patch")}


def test_every_route_is_documented_and_every_documented_route_exists():
    assert flask_routes() == documented_routes()


def resolve(schema):
    while "$ref" in schema:
        node = SPEC
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def violations(value, schema, where="$"):
    """Where `value` breaks `schema` (the subset of JSON Schema the spec uses); empty when it fits."""
    schema = resolve(schema)
    if "allOf" in schema:
        return [v for sub in schema["allOf"] for v in violations(value, sub, where)]
    if "oneOf" in schema:
        fits = [sub for sub in schema["oneOf"] if not violations(value, sub, where)]
        return [] if len(fits) == 1 else [f"{where}: fits {len(fits)} of the oneOf schemas"]
    problems = []
    kind = schema.get("type")
    types = {"object": dict, "array": list, "string": str, "boolean": bool, "integer": int,
             "number": (int, float)}
    if kind and (not isinstance(value, types[kind]) or (kind in ("integer", "number") and isinstance(value, bool))):
        return [f"{where}: expected {kind}, got {type(value).__name__}"]
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{where}: {value!r} not in {schema['enum']}")
    if "const" in schema and value != schema["const"]:
        problems.append(f"{where}: {value!r} != {schema['const']!r}")
    if kind == "object":
        problems += [f"{where}: missing {key}" for key in schema.get("required", []) if key not in value]
        for key, item in value.items():
            if key in schema.get("properties", {}):
                problems += violations(item, schema["properties"][key], f"{where}.{key}")
            elif isinstance(schema.get("additionalProperties"), dict):
                problems += violations(item, schema["additionalProperties"], f"{where}.{key}")
    if kind == "array" and "items" in schema:
        for i, item in enumerate(value):
            problems += violations(item, schema["items"], f"{where}[{i}]")
    return problems


def documented_schema(path, method, status):
    response = resolve(SPEC["paths"][path][method]["responses"][str(status)])
    return response["content"]["application/json"]["schema"]


def test_the_validator_catches_a_wrong_answer():
    schema = documented_schema("/api/v1/check", "post", 200)
    assert violations({"label": "maybe", "probability": "high"}, schema)


def calls():
    jpg, webp, png = (p.read_bytes() for p in sample_images())
    return [
        ("get", "/healthz", {}, 200),
        ("get", "/api/v1/model", {}, 200),
        ("post", "/api/v1/check", {"data": jpg, "content_type": "image/jpeg"}, 200),
        ("post", "/api/v1/check?tta=0", {"data": {"file": (io.BytesIO(png), "a.png")}}, 200),
        ("post", "/api/v1/check", {"data": b"nope", "content_type": "image/png"}, 422),
        ("post", "/api/v1/check", {"data": b"", "content_type": "image/png"}, 400),
        ("post", "/api/v1/check", {"data": b"x", "content_type": "text/plain"}, 415),
        ("post", "/api/v1/check-url", {"json": {"url": "http://127.0.0.1/"}}, 403),
        ("post", "/api/v1/check-batch", {"data": {"file": [(io.BytesIO(webp), "a.webp"),
                                                           (io.BytesIO(b"bad"), "b.png")]}}, 200),
        ("post", "/api/v1/check-batch", {"json": {"urls": []}}, 400),
        ("post", "/api/v1/explain", {"data": webp, "content_type": "image/webp"}, 200),
        ("post", "/api/v1/explain", {"data": b"nope", "content_type": "image/png"}, 422),
    ]


@pytest.mark.parametrize("method, url, kwargs, status", calls(), ids=lambda v: str(v)[:30])
def test_answers_fit_the_documented_schema(client, method, url, kwargs, status):
    response = getattr(client, method)(url, **kwargs)
    assert response.status_code == status
    path = url.split("?")[0]
    assert violations(response.get_json(), documented_schema(path, method, status)) == []
