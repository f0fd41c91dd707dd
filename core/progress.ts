/**
 * A terminal progress bar for long work (training, sampling): a bar, counts, rate, ETA and a
 * few live fields such as the loss. On a TTY it redraws one line; otherwise (CI, pipes) it prints
 * a plain line at most every `plainEverySeconds`, so logs stay readable.
 *
 * @module
 */

/** Options of {@linkcode createProgress}. */
export interface ProgressOptions {
  /** Total number of units; the bar fills as `done` approaches it. */
  total: number;
  /** Label shown before the bar. @default "" */
  label?: string;
  /** Unit name for the rate, e.g. "img". @default "it" */
  unit?: string;
  /** Where the text goes. @default Deno.stderr */
  write?: (text: string) => void;
  /** Whether to redraw in place; defaults to whether stderr is a terminal. */
  tty?: boolean;
  /** Seconds between plain (non-TTY) lines. @default 10 */
  plainEverySeconds?: number;
  /** Clock in milliseconds, injectable for tests. @default performance.now */
  now?: () => number;
  /**
   * Units already done when the bar starts (skipped images, a resumed run's images); they count
   * toward the total but not toward the rate. @default 0
   */
  initial?: number;
}

/** A live progress bar. */
export interface Progress {
  /** Sets the number of units done and the extra fields shown after the bar. */
  update(done: number, fields?: Record<string, string | number>): void;
  /**
   * Draws the final state and ends the line: `done` units (the total unless the work stopped
   * early, e.g. after Ctrl-C or a time limit, when it is the count really done).
   */
  finish(fields?: Record<string, string | number>, done?: number): void;
}

/**
 * Creates a progress bar.
 *
 * @example
 * ```ts
 * import { createProgress } from "./progress.ts";
 * const bar = createProgress({ total: 100, label: "train", unit: "img", write: () => {} });
 * bar.update(50, { loss: 0.12 });
 * bar.finish();
 * ```
 */
export function createProgress(options: ProgressOptions): Progress {
  const encoder = new TextEncoder();
  const {
    total,
    label = "",
    unit = "it",
    write = (t: string) => Deno.stderr.writeSync(encoder.encode(t)),
    tty = isTerminal(),
    plainEverySeconds = 10,
    now = () => performance.now(),
    initial = 0,
  } = options;
  const start = now();
  let lastDraw = -Infinity;
  const render = (done: number, fields: Record<string, string | number>) => {
    const elapsed = (now() - start) / 1000;
    // The clock starts with the bar, so every unit done since counts, the first batch's too.
    const rate = elapsed > 0 ? (done - initial) / elapsed : 0;
    const frac = total > 0 ? Math.min(1, done / total) : 0;
    const width = 24;
    const filled = Math.round(frac * width);
    const bar = "#".repeat(filled) + "-".repeat(width - filled);
    const eta = done >= total ? 0 : rate > 0 ? (total - done) / rate : NaN;
    const extras = Object.entries(fields).map(([k, v]) =>
      `${k} ${typeof v === "number" ? formatNumber(v) : v}`
    );
    return [
      `${label ? label + " " : ""}[${bar}] ${done}/${total}`,
      `${formatNumber(rate)} ${unit}/s`,
      `elapsed ${formatDuration(elapsed)}`,
      `eta ${formatDuration(eta)}`,
      ...extras,
    ].join(" | ");
  };
  return {
    update(done, fields = {}) {
      const t = now();
      if (tty) {
        if (t - lastDraw < 100) return;
        lastDraw = t;
        write(`\r\x1b[2K${render(done, fields)}`);
      } else if (t - lastDraw >= plainEverySeconds * 1000) {
        lastDraw = t;
        write(`${render(done, fields)}\n`);
      }
    },
    finish(fields = {}, done = total) {
      write(`${tty ? "\r\x1b[2K" : ""}${render(done, fields)}\n`);
    },
  };
}

/** Formats seconds as `1h02m`, `3m05s` or `12s`; `--` when unknown. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "--";
  const s = Math.round(seconds);
  if (s >= 3600) {
    return `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, "0")}m`;
  }
  if (s >= 60) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${s}s`;
}

function formatNumber(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  if (x !== 0 && (Math.abs(x) < 1e-3 || Math.abs(x) >= 1e5)) return x.toExponential(2);
  return Math.abs(x) >= 100 ? x.toFixed(0) : x.toPrecision(3);
}

function isTerminal(): boolean {
  try {
    return Deno.stderr.isTerminal();
  } catch {
    return false;
  }
}
