/**
 * Returns the delay in ms before reconnect attempt `attempt` (1 for the
 * first): exponential from `initialMs`, capped at `maxMs`, with "equal
 * jitter" (half fixed, half random) so that many clients dropped at once
 * do not reconnect in step.
 */
export function reconnectDelayMs(
  attempt: number,
  initialMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  const exponent = Math.min(attempt - 1, 30);
  const ceiling = Math.min(maxMs, initialMs * 2 ** exponent);
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
