import assert from "node:assert/strict";
import { test } from "node:test";

import { reconnectDelayMs } from "../../src/client/backoff.js";

test("first delay lies between half and all of initial", () => {
  assert.equal(
    reconnectDelayMs(1, 100, 30_000, () => 0),
    50,
  );
  assert.equal(
    reconnectDelayMs(1, 100, 30_000, () => 1),
    100,
  );
});

test("delay doubles with each attempt", () => {
  const ceilings = [1, 2, 3, 4, 5].map((attempt) =>
    reconnectDelayMs(attempt, 100, 30_000, () => 1),
  );

  assert.deepEqual(ceilings, [100, 200, 400, 800, 1600]);
});

test("delay stops growing at the maximum", () => {
  assert.equal(
    reconnectDelayMs(12, 100, 30_000, () => 1),
    30_000,
  );
  assert.equal(
    reconnectDelayMs(1_000, 100, 30_000, () => 1),
    30_000,
  );
  assert.equal(
    reconnectDelayMs(1_000, 100, 30_000, () => 0),
    15_000,
  );
});

test("jitter spreads delays of one attempt", () => {
  const delays = new Set(
    [0, 0.25, 0.5, 0.75].map((random) =>
      reconnectDelayMs(4, 100, 30_000, () => random),
    ),
  );

  assert.equal(delays.size, 4);
});
