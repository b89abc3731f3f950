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
}
