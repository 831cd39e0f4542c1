import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";

import { chromium, type BrowserContext, type Page } from "playwright-core";

import { useServerFixture } from "../support/server-fixture.js";
import {
  startStaticServer,
  type StaticServer,
} from "../support/static-server.js";

const chromiumPath = "/usr/bin/chromium";
// Compiled tests live in dist/test/client; the SDK in dist/src/client.
const distRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

const page = `<!doctype html>
<html><head><meta charset="utf-8"><title>kvstream SDK</title></head>
<body><script type="module">
  import * as sdk from "/src/client/index.js";
  window.kvstream = sdk;
  window.sdkLoaded = true;
</script></body></html>`;

const skipReason =
  !existsSync(chromiumPath) && process.env.CI !== "true"
    ? `${chromiumPath} is missing (apt-get install -y chromium); CI=true makes this test run and fail instead`
    : false;

describe("SDK in a browser", { skip: skipReason, timeout: 60_000 }, () => {
  const fixture = useServerFixture("sqlite", {
    keys: { web: { tenant: "web" } },
  });
  let files: StaticServer;
  let userDataDir: string;
  let context: BrowserContext;
  let browserPage: Page;

  before(async () => {
    files = await startStaticServer(distRoot, page);
    userDataDir = await mkdtemp(join(tmpdir(), "kvstream-chromium-"));
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: chromiumPath,
      headless: true,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    browserPage = await context.newPage();
    await browserPage.goto(files.origin);
    await browserPage.waitForFunction(
      () => (globalThis as any).sdkLoaded,
      null,
      {
        timeout: 10_000,
      },
    );
  });

  after(async () => {
    await context?.close();
    if (userDataDir) await rm(userDataDir, { recursive: true, force: true });
    await files?.close();
  });

  it("set, get and watch work", async () => {
    const result = await browserPage.evaluate(
      async ({ url, apiKey }) => {
        const { connect } = (globalThis as any).kvstream;
        const client = await connect(url, { apiKey });
        const namespace = "tenant:web/browser";
        const watch = client.watch(namespace);
        await client.get({ namespace, key: "sync" }).catch(() => undefined);
        const written = await client.set({
          namespace,
          key: "theme",
          value: { mode: "dark" },
        });
        const entry = await client.get({ namespace, key: "theme" });
        const change = (await watch.next()).value;
        await client.close();
        return { written, entry, change };
      },
      { url: fixture.server.url, apiKey: fixture.keys.web.key },
    );

    assert.equal(result.written.version, 1);
    assert.deepEqual(result.entry.value, { mode: "dark" });
    assert.equal(result.change.seq, result.written.seq);
    assert.deepEqual(result.change.value, { mode: "dark" });
  });

  it("errors arrive as KvError with code", async () => {
    const result = await browserPage.evaluate(
      async ({ url, apiKey }) => {
        const { connect, KvError, ErrorCode } = (globalThis as any).kvstream;
        const client = await connect(url, { apiKey });
        try {
          await client.get({ namespace: "tenant:web/browser", key: "none" });
          return { thrown: false };
        } catch (error: any) {
          return {
            thrown: true,
            isKvError: error instanceof KvError,
            code: error.code,
            expected: ErrorCode.NotFound,
          };
        } finally {
          await client.close();
        }
      },
      { url: fixture.server.url, apiKey: fixture.keys.web.key },
    );

    assert.equal(result.thrown, true);
    assert.equal(result.isKvError, true);
    assert.equal(result.code, result.expected);
  });
});
