/**
 * Summarises a V8 .cpuprofile (as written by `node --cpu-prof`) by self
 * time per function, the view that shows where a server spends its CPU.
 *
 * Run: node dist/bench/profile-summary.js FILE.cpuprofile [rows]
 */
import { readFileSync } from "node:fs";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  /** Microseconds between each sample and the one before it. */
  timeDeltas: number[];
}

export interface SelfTimeRow {
  name: string;
  selfMs: number;
  share: number;
}

/** Sums the sampled time of each function where it was on top of the stack. */
export function selfTimeByFunction(profile: CpuProfile): SelfTimeRow[] {
  const nameById = new Map<number, string>();
  for (const node of profile.nodes) {
    const { functionName, url, lineNumber } = node.callFrame;
    const file = url
      .replace(/^file:\/\//, "")
      .replace(/^.*\/(dist|node_modules)\//, "$1/");
    const name = functionName || "(anonymous)";
    nameById.set(node.id, file ? `${name} ${file}:${lineNumber + 1}` : name);
  }

  const selfMicros = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((nodeId, index) => {
    // Each delta is the time before its sample, so it belongs to that sample.
    const micros = profile.timeDeltas[index] ?? 0;
    const name = nameById.get(nodeId) ?? "(unknown)";
    selfMicros.set(name, (selfMicros.get(name) ?? 0) + micros);
    total += micros;
  });

  return [...selfMicros]
    .map(([name, micros]) => ({
      name,
      selfMs: micros / 1000,
      share: total > 0 ? micros / total : 0,
    }))
    .sort((a, b) => b.selfMs - a.selfMs);
}

function main(): void {
  const [file, rowsText] = process.argv.slice(2);
  if (!file) {
    process.stderr.write(
      "usage: node dist/bench/profile-summary.js FILE.cpuprofile [rows]\n",
    );
    process.exitCode = 2;
    return;
  }
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  const rows = selfTimeByFunction(profile).slice(0, Number(rowsText ?? 30));
  const seconds = (profile.endTime - profile.startTime) / 1e6;
  process.stdout.write(`${file}: ${seconds.toFixed(1)} s profiled\n`);
  for (const row of rows) {
    process.stdout.write(
      `${(row.share * 100).toFixed(1).padStart(5)}%  ${row.selfMs.toFixed(0).padStart(7)} ms  ${row.name}\n`,
    );
  }
}

main();
