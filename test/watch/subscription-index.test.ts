import assert from "node:assert/strict";
import { describe, test } from "node:test";

import fc from "fast-check";

import { SubscriptionIndex } from "../../src/watch/subscription-index.js";

function matches(
  index: SubscriptionIndex<string>,
  namespace: string,
): string[] {
  const visited: string[] = [];
  index.forEachMatch(namespace, (subscriber) => visited.push(subscriber));
  return visited.sort();
}

describe("SubscriptionIndex", () => {
  test("empty index matches nothing", () => {
    const index = new SubscriptionIndex<string>();
    assert.equal(index.size, 0);
    assert.deepEqual(matches(index, "tenant:acme"), []);
  });

  test("exact namespace matches", () => {
    const index = new SubscriptionIndex<string>();
    index.add("tenant:acme/x", "s1");
    assert.deepEqual(matches(index, "tenant:acme/x"), ["s1"]);
  });

  test("descendant namespace matches", () => {
    const index = new SubscriptionIndex<string>();
    index.add("tenant:acme", "s1");
    assert.deepEqual(matches(index, "tenant:acme/x"), ["s1"]);
    assert.deepEqual(matches(index, "tenant:acme/x/y/z"), ["s1"]);
  });

  test("prefix without slash boundary", () => {
    const index = new SubscriptionIndex<string>();
    index.add("tenant:acme", "s1");
    index.add("tenant:acme/x", "s2");
    assert.deepEqual(matches(index, "tenant:acme2"), []);
    assert.deepEqual(matches(index, "tenant:acme2/x"), []);
    assert.deepEqual(matches(index, "tenant:acme/xy"), ["s1"]);
    assert.deepEqual(matches(index, "tenant:acme/x0"), ["s1"]);
  });

  test("ancestor change does not match", () => {
    const index = new SubscriptionIndex<string>();
    index.add("tenant:acme/x/y", "s1");
    assert.deepEqual(matches(index, "tenant:acme/x"), []);
    assert.deepEqual(matches(index, "tenant:acme"), []);
  });

  test("overlapping subscriptions each visited", () => {
    const index = new SubscriptionIndex<string>();
    index.add("tenant:acme", "s1");
    index.add("tenant:acme/x", "s1");
    index.add("tenant:acme/x", "s2");
    index.add("tenant:acme/x/y", "s3");
    assert.equal(index.size, 4);
    assert.deepEqual(matches(index, "tenant:acme/x/y"), [
      "s1",
      "s1",
      "s2",
      "s3",
    ]);
    assert.deepEqual(matches(index, "tenant:acme/x"), ["s1", "s1", "s2"]);
    assert.deepEqual(matches(index, "tenant:acme/z"), ["s1"]);
  });

  test("duplicate add counted once", () => {
    const index = new SubscriptionIndex<string>();
    index.add("tenant:acme", "s1");
    index.add("tenant:acme", "s1");
    assert.equal(index.size, 1);
    assert.deepEqual(matches(index, "tenant:acme"), ["s1"]);
  });

  test("remove drops one subscription", () => {
    const index = new SubscriptionIndex<string>();
    index.add("tenant:acme", "s1");
    index.add("tenant:acme/x", "s1");
    index.add("tenant:acme/x", "s2");
    index.remove("tenant:acme/x", "s1");
    assert.equal(index.size, 2);
    assert.deepEqual(matches(index, "tenant:acme/x"), ["s1", "s2"]);
    index.remove("tenant:acme", "s1");
    assert.equal(index.size, 1);
    assert.deepEqual(matches(index, "tenant:acme/x"), ["s2"]);
    assert.deepEqual(matches(index, "tenant:acme"), []);
  });

  test("remove of unknown is a no-op", () => {
    const index = new SubscriptionIndex<string>();
    index.add("tenant:acme", "s1");
    index.remove("tenant:acme", "s2");
    index.remove("tenant:other", "s1");
    index.remove("tenant:acme/x", "s1");
    assert.equal(index.size, 1);
    assert.deepEqual(matches(index, "tenant:acme"), ["s1"]);
  });

  test("remove then add again", () => {
    const index = new SubscriptionIndex<string>();
    index.add("tenant:acme", "s1");
    index.remove("tenant:acme", "s1");
    index.remove("tenant:acme", "s1");
    assert.equal(index.size, 0);
    index.add("tenant:acme", "s1");
    assert.equal(index.size, 1);
    assert.deepEqual(matches(index, "tenant:acme/x"), ["s1"]);
  });

  test("property: same as a naive filter", () => {
    const namespace = fc
      .tuple(
        fc.constantFrom("acme", "acme2", "a"),
        fc.array(fc.constantFrom("x", "xy", "x0", "y", "é", "😀"), {
          maxLength: 3,
        }),
      )
      .map(([tenant, segments]) => [`tenant:${tenant}`, ...segments].join("/"));
    const subscriber = fc.constantFrom("s1", "s2", "s3", "s4");
    const operation = fc.record({
      add: fc.boolean(),
      namespace,
      subscriber,
    });

    fc.assert(
      fc.property(
        fc.array(operation, { maxLength: 40 }),
        namespace,
        (operations, changed) => {
          const index = new SubscriptionIndex<string>();
          // The naive model: the set of (namespace, subscriber) pairs.
          const model = new Map<
            string,
            { namespace: string; subscriber: string }
          >();
          for (const step of operations) {
            const id = JSON.stringify([step.namespace, step.subscriber]);
            if (step.add) {
              index.add(step.namespace, step.subscriber);
              model.set(id, {
                namespace: step.namespace,
                subscriber: step.subscriber,
              });
            } else {
              index.remove(step.namespace, step.subscriber);
              model.delete(id);
            }
          }

          const expected = [...model.values()]
            .filter(
              (entry) =>
                changed === entry.namespace ||
                changed.startsWith(`${entry.namespace}/`),
            )
            .map((entry) => entry.subscriber)
            .sort();
          assert.deepEqual(matches(index, changed), expected);
          assert.equal(index.size, model.size);
        },
      ),
      { numRuns: 500 },
    );
  });
});
