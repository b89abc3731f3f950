import type { LayerProgress } from "../types.js";

/** What a layer cost on the network; shared by every reader of the layer's blob. */
export class FetchCounters {
  requests = 0;
  bytesFetched = 0;
  errors = 0;
  lastError: string | undefined;

  noteRequest(bytes: number): void {
    this.requests += 1;
    this.bytesFetched += bytes;
  }

  noteError(message: string): void {
    this.errors += 1;
    this.lastError = message;
  }

  /** A layer's progress as the apps see it, from these counters. */
  progress(layer: Pick<LayerProgress, "digest" | "state" | "kind" | "bytesTotal">): Omit<LayerProgress, "dir" | "overlayDir"> {
    return {
      ...layer,
      bytesFetched: this.bytesFetched,
      requests: this.requests,
      errors: this.errors,
      ...(this.lastError !== undefined ? { lastError: this.lastError } : {}),
    };
  }
}
