import { Agent, request } from "undici";
import { describeError } from "@lazypull/errors";
import { DaemonClientError } from "./errors.js";
import { daemonSocketPath } from "./socket-path.js";
import type { AcquireRequest, ApiError, CacheStatus, Health, ImageLease, LayerStatus } from "./types.js";

export interface DaemonClientOptions {
  /** default: `daemonSocketPath()` */
  socketPath?: string;
  /** per request; default 10 minutes (acquiring a big image over a slow network takes a while) */
  timeoutMs?: number;
}

type Method = "GET" | "POST" | "DELETE";

function isApiError(v: unknown): v is ApiError {
  const e = v as ApiError | null;
  return typeof e === "object" && e !== null && typeof e.code === "string" && typeof e.message === "string";
}

/** lazypulld's HTTP API over its Unix socket, one keep-alive undici Agent per client. */
export class DaemonClient {
  readonly socketPath: string;
  private readonly agent: Agent;
  private readonly timeoutMs: number;

  constructor(opts: DaemonClientOptions = {}) {
    this.socketPath = opts.socketPath ?? daemonSocketPath();
    this.timeoutMs = opts.timeoutMs ?? 600_000;
    this.agent = new Agent({ connect: { socketPath: this.socketPath }, connections: 4 });
  }

  health(): Promise<Health> {
    return this.json("GET", "/healthz");
  }

  /** Mounts (or shares) an image's layers and returns a lease on them. */
  acquire(req: AcquireRequest): Promise<ImageLease> {
    return this.json("POST", "/v1/images", req);
  }

  /** Resolves once an (early) lease's layers are open; rejects with the reason one cannot be (e.g. `FUSEFS_BAD_LAYER`). */
  async ready(id: string): Promise<void> {
    await this.json("GET", `/v1/images/${encodeURIComponent(id)}/ready`);
  }

  images(): Promise<ImageLease[]> {
    return this.json("GET", "/v1/images");
  }

  image(id: string): Promise<ImageLease> {
    return this.json("GET", `/v1/images/${encodeURIComponent(id)}`);
  }

  /** Ends a lease; layers no other lease uses are unmounted. */
  async release(id: string): Promise<void> {
    await this.json("DELETE", `/v1/images/${encodeURIComponent(id)}`);
  }

  layers(): Promise<LayerStatus[]> {
    return this.json("GET", "/v1/layers");
  }

  cache(): Promise<CacheStatus> {
    return this.json("GET", "/v1/cache");
  }

  /** Prometheus text exposition */
  async metrics(): Promise<string> {
    const res = await this.send("GET", "/metrics");
    const text = await res.body.text();
    if (res.statusCode !== 200) throw this.failure(res.statusCode, text, "/metrics");
    return text;
  }

  close(): Promise<void> {
    return this.agent.close();
  }

  private async send(method: Method, path: string, body?: unknown) {
    try {
      return await request(`http://lazypulld${path}`, {
        method,
        dispatcher: this.agent,
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
        ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { "content-type": "application/json" } }),
      });
    } catch (err) {
      throw new DaemonClientError(
        "DAEMON_UNAVAILABLE",
        `lazypulld is not answering on ${this.socketPath}: ${describeError(err)}`,
        { socketPath: this.socketPath, method, path },
        { cause: err },
      );
    }
  }

  private failure(status: number, text: string, path: string): DaemonClientError {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (isApiError(parsed)) return new DaemonClientError(parsed.code, parsed.message, { ...parsed.context, status, path });
    return new DaemonClientError("DAEMON_BAD_RESPONSE", `lazypulld answered ${status} to ${path}: ${text.slice(0, 200)}`, { status, path });
  }

  private async json<T>(method: Method, path: string, body?: unknown): Promise<T> {
    const res = await this.send(method, path, body);
    const text = await res.body.text();
    if (res.statusCode >= 300) throw this.failure(res.statusCode, text, path);
    if (res.statusCode === 204 || text === "") return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch (err) {
      throw new DaemonClientError("DAEMON_BAD_RESPONSE", `lazypulld sent invalid JSON for ${path}`, { path }, { cause: err });
    }
  }
}
