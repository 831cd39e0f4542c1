import { monitorEventLoopDelay } from "node:perf_hooks";

import type { GeneratorLoad } from "./tasks.js";

/** Watches this process's CPU time and event loop delay over a window. */
export class GeneratorLoadMeter {
  private readonly delay = monitorEventLoopDelay({ resolution: 10 });
  private cpuStart = process.cpuUsage();
  private wallStart = performance.now();

  start(): void {
    this.delay.reset();
    this.delay.enable();
    this.cpuStart = process.cpuUsage();
    this.wallStart = performance.now();
  }

  stop(): GeneratorLoad {
    this.delay.disable();
    const cpu = process.cpuUsage(this.cpuStart);
    const wallMs = performance.now() - this.wallStart;
    const cpuMs = (cpu.user + cpu.system) / 1000;
    return {
      cpuFraction: wallMs > 0 ? cpuMs / wallMs : 0,
      // The histogram records nanoseconds.
      loopDelayP99Ms:
        this.delay.count > 0 ? this.delay.percentile(99) / 1e6 : 0,
    };
  }
}

/** True when the generator used most of a core, so it may have limited the run. */
export function isGeneratorSaturated(load: GeneratorLoad): boolean {
  return load.cpuFraction > 0.9;
}

/**
 * True when the generator's event loop waited long for the CPU while
 * using little of it: other processes kept the cores busy, so latencies
 * include scheduling delay on the generator's side too.
 */
export function isMachineOversubscribed(load: GeneratorLoad): boolean {
  return load.cpuFraction <= 0.9 && load.loopDelayP99Ms > 50;
}
