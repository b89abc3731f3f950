import { formatBytes, formatDuration } from "./progress.js";

export interface Row {
  label: string;
  done: number;
  total: number;
  status: string;
}

/**
 * Several progress rows redrawn in place (one per layer), with bytes, rate and ETA, on a TTY only.
 */
export class MultiProgress {
  private readonly rows: Row[] = [];
  private readonly started = new Map<number, number>();
  private drawn = 0;
  private last = 0;

  constructor(
    private readonly stream: NodeJS.WriteStream = process.stderr,
    readonly enabled: boolean = Boolean(process.stderr.isTTY) && !process.env.CI,
  ) {}

  set(index: number, row: Row): void {
    if (!this.started.has(index)) this.started.set(index, Date.now());
    this.rows[index] = row;
    const now = Date.now();
    if (now - this.last >= 100) {
      this.last = now;
      this.draw();
    }
  }

  private line(i: number, r: Row): string {
    const frac = r.total > 0 ? Math.min(1, r.done / r.total) : 0;
    const width = 20;
    const filled = Math.round(frac * width);
    const secs = (Date.now() - (this.started.get(i) ?? Date.now())) / 1000;
    const rate = secs > 0 ? r.done / secs : 0;
    const eta = rate > 0 && r.done < r.total ? ` ETA ${formatDuration(((r.total - r.done) / rate) * 1000)}` : "";
    return `${r.label} [${"#".repeat(filled)}${"-".repeat(width - filled)}] ${formatBytes(r.done)}/${formatBytes(r.total)} ${formatBytes(rate)}/s${eta} ${r.status}`;
  }

  draw(): void {
    if (!this.enabled) return;
    let out = this.drawn > 0 ? `\x1b[${this.drawn}A` : "";
    this.rows.forEach((r, i) => {
      if (r) out += `\r\x1b[K${this.line(i, r)}\n`;
    });
    this.drawn = this.rows.filter(Boolean).length;
    this.stream.write(out);
  }

  finish(): void {
    this.draw();
  }
}
