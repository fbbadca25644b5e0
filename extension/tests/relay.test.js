import assert from "node:assert/strict";
import { createServer } from "node:http";
import { after, before, test } from "node:test";

import { createRelayClient, errorKindForStatus, RelayError } from "../src/lib/relay.js";
import { datasetBytes, datasetRows } from "./helpers.js";

// A stand-in relay that records what it receives and answers from `reply` (set per test).
let server;
let baseUrl;
let received;
let reply;

before(async () => {
  server = createServer((request, response) => {
    const chunks = [];
    request.on("data", (chunk) => chunks.push(chunk));
    request.on("end", async () => {
      received = { method: request.method, url: request.url, headers: request.headers, body: Buffer.concat(chunks) };
      const { status = 200, headers = {}, body } = await reply(received);
      response.writeHead(status, { "Content-Type": "application/json", ...headers });
      response.end(typeof body === "string" ? body : JSON.stringify(body));
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  baseUrl = `http://127.0.0.1:${server.address().port}/`;
});

after(() => server.close());

const verdict = { label: "ai", probability: 0.9, model_version: "m1", sha256: "ab" };

test("checkBytes posts the raw image with its type and the bearer token", async () => {
  const [row] = datasetRows(1);
  const bytes = datasetBytes(row);
  reply = () => ({ body: verdict });
  const relay = createRelayClient({ baseUrl, token: "s3cret" });
  assert.deepEqual(await relay.checkBytes(bytes, "image/webp"), verdict);
  assert.equal(received.method, "POST");
  assert.equal(received.url, "/api/v1/check?tta=adaptive");
  assert.equal(received.headers["content-type"], "image/webp");
  assert.equal(received.headers.authorization, "Bearer s3cret");
  assert.deepEqual(new Uint8Array(received.body), bytes);
  await relay.checkBytes(bytes, "text/html");
  assert.equal(received.headers["content-type"], "application/octet-stream");
});

test("no token, no Authorization header; check-url sends JSON", async () => {
  reply = () => ({ body: verdict });
  await createRelayClient({ baseUrl }).checkUrl("https://example.com/a.png");
  assert.equal(received.headers.authorization, undefined);
  assert.equal(received.headers["content-type"], "application/json");
  assert.deepEqual(JSON.parse(received.body), { url: "https://example.com/a.png" });
});

test("a batch goes as multipart `file` fields and comes back in order, failures included", async () => {
  const images = datasetRows(2).map((row) => ({ bytes: datasetBytes(row), type: `image/${row.format}` }));
  reply = async (request) => {
    const form = await new Response(request.body, { headers: { "Content-Type": request.headers["content-type"] } }).formData();
    const files = form.getAll("file");
    const results = await Promise.all(
      files.map(async (file, index) => {
        const size = (await file.arrayBuffer()).byteLength;
        return index === 1
          ? { index, ok: false, error: { code: 422, reason: "truncated image" } }
          : { index, ok: true, ...verdict, probability: size };
      }),
    );
    return { body: { results: results.reverse() } };
  };
  const entries = await createRelayClient({ baseUrl }).checkBatchFiles(images);
  assert.equal(received.url, "/api/v1/check-batch?tta=adaptive");
  assert.equal(entries.length, images.length);
  entries.forEach((entry, index) => {
    if (index === 1) {
      assert.equal(entry.ok, false);
      assert.equal(entry.error.kind, "unreadable");
      assert.equal(entry.error.message, "truncated image");
    } else {
      assert.equal(entry.ok, true);
      assert.equal(entry.result.probability, images[index].bytes.length); // the file arrived whole
      assert.equal(entry.result.index, undefined);
    }
  });
});

test("a batch answer that leaves an image out marks that image failed", async () => {
  reply = () => ({ body: { results: [{ index: 0, ok: true, ...verdict }] } });
  const entries = await createRelayClient({ baseUrl }).checkBatchUrls(["http://a/1", "http://a/2"]);
  assert.deepEqual(JSON.parse(received.body), { urls: ["http://a/1", "http://a/2"] });
  assert.equal(entries[0].ok, true);
  assert.equal(entries[1].ok, false);
  assert.equal(entries[1].error.kind, "relay-error");
});

test("HTTP errors become RelayErrors with the relay's reason and Retry-After", async () => {
  reply = () => ({ status: 429, headers: { "Retry-After": "7" }, body: { error: { code: 429, reason: "slow down" } } });
  const relay = createRelayClient({ baseUrl });
  await assert.rejects(relay.checkUrl("http://a/1"), (error) => {
    assert.ok(error instanceof RelayError);
    assert.deepEqual(error.toJSON(), { kind: "rate-limited", message: "slow down", status: 429, retryAfter: 7 });
    return true;
  });
  reply = () => ({ status: 502, headers: { "Content-Type": "text/html" }, body: "<h1>Bad gateway</h1>" });
  await assert.rejects(relay.health(), { kind: "relay-error", message: "HTTP 502" });
  reply = () => ({ status: 200, headers: { "Content-Type": "text/plain" }, body: "ok" });
  await assert.rejects(relay.health(), { kind: "relay-error" });
});

test("a relay that is not listening is unreachable", async () => {
  const closed = createServer();
  await new Promise((resolve) => closed.listen(0, "127.0.0.1", resolve));
  const { port } = closed.address();
  await new Promise((resolve) => closed.close(resolve));
  await assert.rejects(createRelayClient({ baseUrl: `http://127.0.0.1:${port}` }).health(), { kind: "unreachable" });
});

test("a relay that does not answer in time is unreachable", async () => {
  reply = () => new Promise((resolve) => setTimeout(() => resolve({ body: verdict }), 500));
  await assert.rejects(createRelayClient({ baseUrl, timeoutMs: 50 }).model(), { kind: "unreachable" });
});

test("checks ask for the configured TTA mode", async () => {
  reply = () => ({ body: verdict });
  for (const tta of ["always", "never"]) {
    const relay = createRelayClient({ baseUrl, tta });
    await relay.checkBytes(new Uint8Array([1, 2, 3]), "image/png");
    assert.equal(received.url, `/api/v1/check?tta=${tta}`);
    await relay.checkUrl("http://a/1");
    assert.equal(received.url, `/api/v1/check-url?tta=${tta}`);
  }
});

test("checks, explanations and the model's details ask for the configured model; the default one adds nothing", async () => {
  reply = () => ({ body: verdict });
  const paper = createRelayClient({ baseUrl, tta: "always", model: "paper" });
  await paper.checkBytes(new Uint8Array([1, 2, 3]), "image/png");
  assert.equal(received.url, "/api/v1/check?tta=always&model=paper");
  await paper.checkBatchUrls(["http://a/1", "http://a/2"]);
  assert.equal(received.url, "/api/v1/check-batch?tta=always&model=paper");
  await paper.explain(new Uint8Array([1]), "image/png");
  assert.equal(received.url, "/api/v1/explain?model=paper");
  await paper.model();
  assert.equal(received.url, "/api/v1/model?model=paper");
  await createRelayClient({ baseUrl, model: "default" }).model();
  assert.equal(received.url, "/api/v1/model");
});

test("a 'too small to judge' answer is kind too-small with the image's size", async () => {
  const reason = "too small to judge: 600x30 pixels (needs at least 32 px on the short side and at most 16:1)";
  reply = () => ({ status: 422, body: { error: { code: 422, reason } } });
  await assert.rejects(createRelayClient({ baseUrl }).checkBytes(new Uint8Array([1]), "image/png"), (error) => {
    assert.deepEqual(error.toJSON(), { kind: "too-small", message: reason, status: 422, retryAfter: null, width: 600, height: 30 });
    return true;
  });
  reply = () => ({ status: 422, body: { error: { code: 422, reason: "truncated or corrupt image data" } } });
  await assert.rejects(createRelayClient({ baseUrl }).checkBytes(new Uint8Array([1]), "image/png"), { kind: "unreadable" });
});

test("status codes map to the states the badge shows", () => {
  assert.deepEqual(
    [429, 401, 413, 415, 422, 403, 400, 500, 504].map(errorKindForStatus),
    ["rate-limited", "unauthorized", "too-large", "unreadable", "unreadable", "refused", "relay-error", "relay-error", "relay-error"],
  );
});
