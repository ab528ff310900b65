// Contract tests against the emulator's Docker image, started by Testcontainers for the run.
//
// npm install --save-dev testcontainers@11   # 11 runs on Node 20; 12 wants Node 22
// docker build -t fullstory-emulator .        # from the emulator's checkout
// node --test

import assert from "node:assert/strict";
import { createServer } from "node:net";
import { after, before, beforeEach, test } from "node:test";
import { gunzipSync } from "node:zlib";
import { GenericContainer, Wait } from "testcontainers";

const IMAGE = process.env.FULLSTORY_EMULATOR_IMAGE ?? "fullstory-emulator";
const KEY = "na1.emulator-demo-key"; // without a keys file, any well-formed key is an admin
const HEADERS = { Authorization: `Basic ${KEY}`, "Content-Type": "application/json" };

let container;
let api;

// A free port, so that the download URLs can name the port the container is published on.
const freePort = () =>
  new Promise((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });

before(async () => {
  const port = await freePort();
  api = `http://localhost:${port}`;
  container = await new GenericContainer(IMAGE)
    .withExposedPorts({ container: 8080, host: port })
    .withEnvironment({
      FULLSTORY_EMULATOR_PUBLIC_URL: api,
      FULLSTORY_EMULATOR_EXPORT_DURATION: "0.5",
      FULLSTORY_EMULATOR_MCP_PORT: "off",
    })
    .withWaitStrategy(Wait.forHealthCheck())
    .withStartupTimeout(120_000)
    .start();
});

after(async () => {
  await container?.stop();
});

const call = async (method, path, body) => {
  const response = await fetch(api + path, {
    method,
    headers: HEADERS,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  assert.ok(response.ok, `${method} ${path}: ${response.status} ${await response.clone().text()}`);
  return response.json();
};

beforeEach(async () => {
  await call("POST", "/__emulator/reset"); // each test from a clean state
});

// An export of the last 24 hours: thousands of events, a small file.
const lastDay = () => {
  const end = new Date();
  end.setUTCMinutes(0, 0, 0);
  const start = new Date(end.getTime() - 24 * 3600 * 1000);
  const stamp = (date) => date.toISOString().replace(/\.\d{3}Z$/, "Z");
  return {
    segmentId: "everyone",
    type: "TYPE_EVENT",
    format: "FORMAT_NDJSON",
    timeRange: { start: stamp(start), end: stamp(end) },
  };
};

// Create an export and poll it until it is no longer PENDING.
const finish = async () => {
  const { operationId } = await call("POST", "/segments/v1/exports", lastDay());
  for (;;) {
    const operation = await call("GET", `/operations/v1/${operationId}`);
    if (operation.state !== "PENDING") return operation;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
};

test("an export, from create to its rows", async () => {
  const operation = await finish();
  assert.equal(operation.state, "COMPLETED");
  const exportId = operation.results.searchExportId;
  const { location } = await call("GET", `/search/v1/exports/${exportId}/results`);
  const download = await fetch(location); // signed: no API key
  assert.equal(download.status, 200);
  const text = gunzipSync(Buffer.from(await download.arrayBuffer())).toString("utf8");
  const rows = text.trim().split("\n").map((line) => JSON.parse(line));
  assert.ok(rows.length > 0 && rows.every((row) => Number(row.IndvId) > 0));
});

test("a failed export", async () => {
  await call("POST", "/__emulator/lifecycle", { fail: "search timed out", times: 1 });
  const operation = await finish();
  assert.equal(operation.state, "ERROR");
  assert.equal(operation.errorDetails, "search timed out");
});
