/**
 * Latency histogram with logarithmic buckets, in the manner of
 * HdrHistogram. Each power of two is split into `subBuckets` equal parts,
 * so a recorded value keeps a relative error below 1 / subBuckets (1.6 %
 * at 64). The range is 1 microsecond to days, in a fixed array of counts
 * that merges by addition.
 *
 * No package is used for this: no package we know of does it well for
 * us, and this one is about 100 lines, has no dependencies, and crosses
 * worker processes as plain JSON.
 */
export class LatencyHistogram {
  static readonly subBuckets = 64;
  /** 2^40 microseconds is about 12 days, far beyond any run. */
  static readonly maxExponent = 40;

  readonly counts: number[];
  count = 0;
  sum = 0;
  min = Number.POSITIVE_INFINITY;
  max = 0;

  constructor() {
    const size =
      (LatencyHistogram.maxExponent + 1) * LatencyHistogram.subBuckets;
    this.counts = new Array<number>(size).fill(0);
  }

  /** Records one value in microseconds; negative values count as 0. */
  record(micros: number): void {
    const value = micros > 0 ? micros : 0;
    this.counts[bucketOf(value)]++;
    this.count++;
    this.sum += value;
    if (value < this.min) this.min = value;
    if (value > this.max) this.max = value;
  }

  /** Adds every value of `other` to this histogram. */
  merge(other: LatencyHistogram | HistogramSnapshot): void {
    const counts = other.counts;
    for (let index = 0; index < counts.length; index++) {
      this.counts[index] += counts[index];
    }
    this.count += other.count;
    this.sum += other.sum;
    if (other.count > 0) {
      this.min = Math.min(this.min, other.min);
      this.max = Math.max(this.max, other.max);
    }
  }

  /**
   * Returns the value at `percentile` (0 to 100) in microseconds: the upper
   * edge of the bucket that contains it, capped at the largest value seen,
   * so a percentile is never reported lower than it was.
   */
  percentile(percentile: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil((percentile / 100) * this.count));
    let seen = 0;
    for (let index = 0; index < this.counts.length; index++) {
      seen += this.counts[index];
      if (seen >= rank) return Math.min(upperEdgeOf(index), this.max);
    }
    return this.max;
  }

  mean(): number {
    return this.count === 0 ? 0 : this.sum / this.count;
  }

  /** Copies the counts into a plain object for JSON and process messages. */
  snapshot(): HistogramSnapshot {
    return {
      counts: this.counts.slice(),
      count: this.count,
      sum: this.sum,
      min: this.count === 0 ? 0 : this.min,
      max: this.max,
    };
  }

  static fromSnapshot(snapshot: HistogramSnapshot): LatencyHistogram {
    const histogram = new LatencyHistogram();
    histogram.merge(snapshot);
    return histogram;
  }
}

export interface HistogramSnapshot {
  counts: number[];
  count: number;
  sum: number;
  min: number;
  max: number;
}

function bucketOf(value: number): number {
  const subBuckets = LatencyHistogram.subBuckets;
  if (value < 1) return 0;
  const exponent = Math.min(
    Math.floor(Math.log2(value)),
    LatencyHistogram.maxExponent,
  );
  const base = 2 ** exponent;
  const fraction = Math.min(value / base - 1, 1 - Number.EPSILON);
  return exponent * subBuckets + Math.floor(fraction * subBuckets);
}

function upperEdgeOf(index: number): number {
  const subBuckets = LatencyHistogram.subBuckets;
  const exponent = Math.floor(index / subBuckets);
  const part = index % subBuckets;
  return 2 ** exponent * (1 + (part + 1) / subBuckets);
}
