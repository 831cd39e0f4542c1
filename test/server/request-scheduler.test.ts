import assert from "node:assert/strict";
import { setImmediate as nextTurn } from "node:timers/promises";
import { describe, test } from "node:test";

import fc from "fast-check";

import type { Request } from "../../src/protocol/envelope.js";
import { RequestScheduler } from "../../src/server/request-scheduler.js";

type Kind = "read" | "write";

/** A request whose execution starts when the scheduler calls it and ends when the test settles it. */
class Job {
  started = false;
  settled = false;
  readonly result: Promise<string>;
  private finish!: (outcome: { ok: boolean; value: string }) => void;

  constructor(
    scheduler: RequestScheduler,
    readonly kind: Kind,
    readonly name: string,
  ) {
    const request: Request = {
      valid: true,
      id: name,
      method: kind === "write" ? "kv/set" : "kv/get",
      params: {},
    };
    this.result = scheduler.run(request, () => {
      this.started = true;
      return new Promise<string>((resolve, reject) => {
        this.finish = ({ ok, value }) => {
          this.settled = true;
          if (ok) resolve(value);
          else reject(new Error(value));
        };
      });
    });
    // Tests that expect a rejection await it. This handler keeps the others
    // from being reported as unhandled.
    this.result.catch(() => {});
  }

  resolve(value = this.name): void {
    assert.ok(this.started, `${this.name} settled before it started`);
    this.finish({ ok: true, value });
  }

  reject(message = `${this.name} failed`): void {
    assert.ok(this.started, `${this.name} settled before it started`);
    this.finish({ ok: false, value: message });
  }
}

function newScheduler(): RequestScheduler {
  return new RequestScheduler((method) => method === "kv/set");
}

/** Lets queued promise callbacks run. */
async function drain(): Promise<void> {
  for (let turn = 0; turn < 3; turn++) await nextTurn();
}

describe("RequestScheduler", () => {
  test("read waits for pending write", async () => {
    const scheduler = newScheduler();
    const write = new Job(scheduler, "write", "w1");
    const read = new Job(scheduler, "read", "r1");
    await drain();
    assert.equal(write.started, true);
    assert.equal(read.started, false);

    write.resolve();
    await drain();
    assert.equal(read.started, true);
    read.resolve();
    assert.equal(await read.result, "r1");
  });

  test("consecutive writes start at once", async () => {
    const scheduler = newScheduler();
    const first = new Job(scheduler, "write", "w1");
    const second = new Job(scheduler, "write", "w2");
    const third = new Job(scheduler, "write", "w3");
    await drain();
    assert.equal(first.started, true);
    assert.equal(second.started, true);
    assert.equal(third.started, true);
    assert.equal(first.settled, false);
    assert.equal(second.settled, false);

    second.resolve();
    first.resolve();
    third.resolve();
    assert.deepEqual(
      await Promise.all([first.result, second.result, third.result]),
      ["w1", "w2", "w3"],
    );
  });

  test("consecutive reads start at once", async () => {
    const scheduler = newScheduler();
    const first = new Job(scheduler, "read", "r1");
    const second = new Job(scheduler, "read", "r2");
    await drain();
    assert.equal(first.started, true);
    assert.equal(second.started, true);
    first.resolve();
    second.resolve();
    await Promise.all([first.result, second.result]);
  });

  test("write waits for pending read", async () => {
    const scheduler = newScheduler();
    const read = new Job(scheduler, "read", "r1");
    const write = new Job(scheduler, "write", "w1");
    await drain();
    assert.equal(read.started, true);
    assert.equal(write.started, false);

    read.resolve();
    await drain();
    assert.equal(write.started, true);
    write.resolve();
    assert.equal(await write.result, "w1");
  });

  test("write waits for every earlier read", async () => {
    const scheduler = newScheduler();
    const first = new Job(scheduler, "read", "r1");
    const second = new Job(scheduler, "read", "r2");
    const write = new Job(scheduler, "write", "w1");
    await drain();
    second.resolve();
    await drain();
    assert.equal(write.started, false);
    first.resolve();
    await drain();
    assert.equal(write.started, true);
    write.resolve();
    await write.result;
  });

  test("writes after a read start together", async () => {
    const scheduler = newScheduler();
    const read = new Job(scheduler, "read", "r1");
    const first = new Job(scheduler, "write", "w1");
    const second = new Job(scheduler, "write", "w2");
    await drain();
    assert.equal(first.started, false);
    assert.equal(second.started, false);

    read.resolve();
    await drain();
    assert.equal(first.started, true);
    assert.equal(second.started, true);
    first.resolve();
    second.resolve();
    await Promise.all([first.result, second.result]);
  });

  test("read after write after read", async () => {
    const scheduler = newScheduler();
    const firstRead = new Job(scheduler, "read", "r1");
    const write = new Job(scheduler, "write", "w1");
    const secondRead = new Job(scheduler, "read", "r2");
    await drain();
    assert.equal(write.started, false);
    assert.equal(secondRead.started, false);

    firstRead.resolve();
    await drain();
    assert.equal(write.started, true);
    assert.equal(secondRead.started, false);

    write.resolve();
    await drain();
    assert.equal(secondRead.started, true);
    secondRead.resolve();
    await secondRead.result;
  });

  test("rejected write does not block", async () => {
    const scheduler = newScheduler();
    const write = new Job(scheduler, "write", "w1");
    const read = new Job(scheduler, "read", "r1");
    await drain();
    write.reject("write failed");
    await assert.rejects(write.result, /write failed/);
    await drain();
    assert.equal(read.started, true);
    read.resolve();
    assert.equal(await read.result, "r1");
  });

  test("rejected read does not block", async () => {
    const scheduler = newScheduler();
    const read = new Job(scheduler, "read", "r1");
    const write = new Job(scheduler, "write", "w1");
    const laterRead = new Job(scheduler, "read", "r2");
    await drain();
    read.reject();
    await assert.rejects(read.result);
    await drain();
    assert.equal(write.started, true);
    write.resolve();
    await drain();
    assert.equal(laterRead.started, true);
    laterRead.resolve();
    assert.equal(await laterRead.result, "r2");
  });

  test("idle scheduler starts at once", async () => {
    const scheduler = newScheduler();
    const write = new Job(scheduler, "write", "w1");
    await drain();
    write.resolve();
    await write.result;

    const read = new Job(scheduler, "read", "r1");
    await drain();
    assert.equal(read.started, true);
    read.resolve();
    await read.result;
  });

  test("property: starts exactly when earlier groups settle", async () => {
    // Each step either submits a request of a kind, or settles (resolves or
    // rejects) one running request chosen by position. A request belongs to
    // a group: the run of consecutive submissions of the same kind. It must
    // be running exactly when every request submitted before its group has
    // settled.
    const step = fc.oneof(
      fc.record({ submit: fc.constantFrom<Kind>("read", "write") }),
      fc.record({ settle: fc.nat(10), ok: fc.boolean() }),
    );

    await fc.assert(
      fc.asyncProperty(
        fc.array(step, { minLength: 1, maxLength: 14 }),
        async (steps) => {
          const scheduler = newScheduler();
          const jobs: Job[] = [];
          const groupStart: number[] = [];

          const check = () => {
            jobs.forEach((job, position) => {
              const earlierSettled = jobs
                .slice(0, groupStart[position])
                .every((earlier) => earlier.settled);
              assert.equal(job.started, earlierSettled, `${job.name} started`);
            });
          };

          for (const action of steps) {
            if ("submit" in action) {
              const position = jobs.length;
              const previous = jobs[position - 1];
              groupStart.push(
                previous && previous.kind === action.submit
                  ? groupStart[position - 1]
                  : position,
              );
              jobs.push(
                new Job(
                  scheduler,
                  action.submit,
                  `${action.submit[0]}${position}`,
                ),
              );
            } else {
              const running = jobs.filter((job) => job.started && !job.settled);
              if (running.length === 0) continue;
              const job = running[action.settle % running.length];
              if (action.ok) job.resolve();
              else job.reject();
            }
            await drain();
            check();
          }

          // Settle everything left so that every request ends.
          for (;;) {
            const running = jobs.filter((job) => job.started && !job.settled);
            if (running.length === 0) break;
            for (const job of running) job.resolve();
            await drain();
            check();
          }
          assert.equal(
            jobs.every((job) => job.settled),
            true,
          );
        },
      ),
      { numRuns: 150 },
    );
  });
});
