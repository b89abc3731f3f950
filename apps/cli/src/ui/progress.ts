/**
 * Progress for long operations: a redrawn bar with bytes, rate and ETA on a TTY, nothing otherwise
 * (machine-readable output goes to stdout with `--json`).
 */
export interface ProgressTask {
  update(done: number, total?: number): void;
  finish(message?: string): void;
}

export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)}s`;
  return `${Math.floor(s / 60)}m${Math.round(s % 60)}s`;
}

export class ProgressBar implements ProgressTask {
  private readonly start = Date.now();
  private last = 0;
  private done = 0;
  private total: number | undefined;

  constructor(
    private readonly label: string,
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly enabled: boolean = Boolean(process.stderr.isTTY) && !process.env.CI,
  ) {}

  update(done: number, total?: number): void {
    this.done = done;
    if (total !== undefined) this.total = total;
    const now = Date.now();
    if (!this.enabled || now - this.last < 100) return;
    this.last = now;
    this.draw();
  }

  private draw(): void {
    const elapsed = (Date.now() - this.start) / 1000;
    const rate = elapsed > 0 ? this.done / elapsed : 0;
    let line = `${this.label} ${formatBytes(this.done)}`;
    if (this.total) {
      const frac = Math.min(1, this.done / this.total);
      const width = 24;
      const filled = Math.round(frac * width);
      const eta = rate > 0 ? (this.total - this.done) / rate : 0;
      line = `${this.label} [${"#".repeat(filled)}${"-".repeat(width - filled)}] ${formatBytes(this.done)}/${formatBytes(this.total)}`;
      line += ` ${formatBytes(rate)}/s ETA ${formatDuration(eta * 1000)}`;
    } else {
      line += ` ${formatBytes(rate)}/s`;
    }
    this.stream.write(`\r\x1b[K${line}`);
  }

  finish(message?: string): void {
    if (!this.enabled) return;
    this.stream.write(`\r\x1b[K${message ? `${this.label} ${message}\n` : ""}`);
  }
}
