import { cpus, loadavg } from "node:os";

import type { Sample, Scenario, TargetName } from "./scenarios.js";
import type { Settings } from "./settings.js";

export interface Summary {
  /** Median of the runs' main figures. */
  median: number;
  p50Ms: number | null;
  p99Ms: number | null;
  values: number[];
}

export interface Row {
  id: string;
  kind: string;
  title: string;
  metric: string;
  higherIsBetter: boolean;
  reference: Summary | null;
  kvstream: Summary | null;
  redis: Summary | null;
  /**
   * Median of kvstream's figure divided by the reference server's, run by
   * run. Each pair ran back to back, so the ratio of a pair suffers less
   * from the load of other processes on a shared machine than a ratio of
   * medians taken minutes apart.
   */
  ratioToReference: number | null;
  /** The same ratio against Redis, where Redis ran. */
  ratioToRedis: number | null;
  notes: string[];
}

export interface Report {
  machine: { cpus: number; model: string; node: string; loadAverage: number[] };
  settings: Settings;
  rows: Row[];
  /** Checks of the performance targets, computed from the rows. */
  targets: TargetCheck[];
}

export interface TargetCheck {
  target: string;
  measured: number | null;
  goal: string;
  met: boolean | null;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? sorted[middle]
    : (sorted[middle - 1] + sorted[middle]) / 2;
}

/**
 * Returns the median of the run-by-run ratios `values[i] / others[i]`,
 * or null when no pair has a non-zero divisor.
 */
// NOTE: runs are paired by position, so a failed run pairs the runs
// after it with their neighbours' partners; the notes list such failures.
export function pairedRatio(values: number[], others: number[]): number | null {
  const ratios: number[] = [];
  for (let index = 0; index < Math.min(values.length, others.length); index++) {
    if (others[index] !== 0) ratios.push(values[index] / others[index]);
  }
  return ratios.length === 0 ? null : median(ratios);
}

export function summarize(samples: Sample[]): Summary | null {
  if (samples.length === 0) return null;
  const optionalMedian = (values: Array<number | undefined>) => {
    const present = values.filter(
      (value): value is number => value !== undefined,
    );
    return present.length === 0 ? null : median(present);
  };
  return {
    median: median(samples.map((sample) => sample.value)),
    p50Ms: optionalMedian(samples.map((sample) => sample.p50Ms)),
    p99Ms: optionalMedian(samples.map((sample) => sample.p99Ms)),
    values: samples.map((sample) => sample.value),
  };
}

export function buildRow(
  scenario: Scenario,
  samples: Record<TargetName | "redis", Sample[]>,
): Row {
  const reference = summarize(samples.reference);
  const kvstream = summarize(samples.kvstream);
  const redis = summarize(samples.redis);
  const ratio = (other: Summary | null) =>
    kvstream && other ? pairedRatio(kvstream.values, other.values) : null;
  const notes = [
    ...samples.reference.flatMap((sample) =>
      sample.notes.map((note) => `reference: ${note}`),
    ),
    ...samples.kvstream.flatMap((sample) =>
      sample.notes.map((note) => `kvstream: ${note}`),
    ),
  ];
  return {
    id: scenario.id,
    kind: scenario.kind,
    title: scenario.title,
    metric: scenario.metric,
    higherIsBetter: scenario.higherIsBetter,
    reference,
    kvstream,
    redis,
    ratioToReference: ratio(reference),
    ratioToRedis: ratio(redis),
    notes: [...new Set(notes)],
  };
}

export function checkTargets(rows: Row[], settings: Settings): TargetCheck[] {
  const byId = new Map(rows.map((row) => [row.id, row]));
  const checks: TargetCheck[] = [];
  const get16 = byId.get("get-p16");
  checks.push({
    target: "get pipeline 16 throughput, kvstream / reference",
    measured: get16?.ratioToReference ?? null,
    goal: ">= 0.8",
    met: get16?.ratioToReference == null ? null : get16.ratioToReference >= 0.8,
  });
  for (const id of ["set-p1", "set-p16"]) {
    const row = byId.get(id);
    checks.push({
      target: `${id} durable throughput, kvstream / Redis appendfsync always`,
      measured: row?.ratioToRedis ?? null,
      goal: ">= 1",
      met: row?.ratioToRedis == null ? null : row.ratioToRedis >= 1,
    });
  }
  const largestFanout = byId.get(
    `fanout-${Math.max(...settings.fanoutSubscribers)}`,
  );
  const lost = largestFanout?.notes.some(
    (note) => note.startsWith("kvstream:") && note.includes("lost"),
  );
  checks.push({
    target: `fan-out to ${Math.max(...settings.fanoutSubscribers)} subscribers, kvstream p99 ms`,
    measured: largestFanout?.kvstream?.median ?? null,
    goal: "<= 100, none lost",
    met: largestFanout?.kvstream
      ? largestFanout.kvstream.median <= 100 && !lost
      : null,
  });
  const idle = byId.get(`idle-${settings.idleConnections}`);
  const idleMiB = idle?.kvstream?.median ?? null;
  checks.push({
    target: `${settings.idleConnections} idle subscribed connections, kvstream MiB resident`,
    measured: idleMiB,
    goal: "<= 200",
    met: idleMiB === null ? null : idleMiB <= 200,
  });
  const growth = settings.growthKeys;
  const smallest = byId.get(`growth-${growth[0]}`)?.kvstream?.median;
  const largest = byId.get(`growth-${growth[growth.length - 1]}`)?.kvstream
    ?.median;
  const growthRatio = smallest && largest ? largest / smallest : null;
  checks.push({
    target: `kv/get p50 at ${growth[growth.length - 1]} keys / at ${growth[0]} keys`,
    measured: growthRatio,
    goal: "<= 1.2",
    met: growthRatio === null ? null : growthRatio <= 1.2,
  });
  return checks;
}

export function machineInfo(): Report["machine"] {
  return {
    cpus: cpus().length,
    model: cpus()[0]?.model ?? "unknown",
    node: process.version,
    loadAverage: loadavg(),
  };
}

function formatNumber(value: number | null | undefined): string {
  if (value === null || value === undefined) return "-";
  if (Math.abs(value) >= 100) return value.toFixed(0);
  if (Math.abs(value) >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

/** Formats the report as a fixed-width text table with notes below it. */
export function formatTable(report: Report): string {
  const header = [
    "scenario",
    "metric",
    "reference",
    "kvstream",
    "redis",
    "kvs/ref",
    "kvs/redis",
    "kvs p50/p99 ms",
  ];
  const lines: string[][] = [header];
  for (const row of report.rows) {
    lines.push([
      row.id,
      row.metric,
      formatNumber(row.reference?.median),
      formatNumber(row.kvstream?.median),
      formatNumber(row.redis?.median),
      formatNumber(row.ratioToReference),
      formatNumber(row.ratioToRedis),
      row.kvstream?.p50Ms == null
        ? "-"
        : `${formatNumber(row.kvstream.p50Ms)}/${formatNumber(row.kvstream.p99Ms)}`,
    ]);
  }
  const widths = header.map((_, column) =>
    Math.max(...lines.map((line) => line[column].length)),
  );
  const table = lines.map((line) =>
    line
      .map((cell, column) =>
        column < 2
          ? cell.padEnd(widths[column])
          : cell.padStart(widths[column]),
      )
      .join("  "),
  );
  const { machine, settings } = report;
  const out = [
    `${machine.cpus} x ${machine.model}, Node.js ${machine.node}, load average ${machine.loadAverage.map((load) => load.toFixed(2)).join(" ")}`,
    `median of ${settings.runs} run(s) per scenario and server, ${settings.durationMs} ms each after ${settings.warmupMs} ms warm-up, ${settings.workers} load generator processes`,
    "ratios are medians of run-by-run ratios; each kvstream run follows its reference run",
    "",
    ...table,
    "",
    "scenarios:",
    ...report.rows.map((row) => `  ${row.id}: ${row.title}`),
    "",
    "targets:",
    ...report.targets.map(
      (check) =>
        `  ${check.met === null ? "n/a " : check.met ? "met " : "MISS"} ${check.target}: ${formatNumber(check.measured)} (goal ${check.goal})`,
    ),
  ];
  const notes = report.rows.flatMap((row) =>
    row.notes.map((note) => `  ${row.id}: ${note}`),
  );
  if (notes.length > 0) out.push("", "notes:", ...notes);
  return out.join("\n") + "\n";
}
