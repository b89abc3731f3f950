import { describe, expect, it } from "vitest";
import { renderStatus, type StatusSnapshot } from "./status.js";

const digest = (c: string) => `sha256:${c.repeat(64)}`;

const snap: StatusSnapshot = {
  socket: "/run/lazypull/lazypulld.sock",
  health: { status: "ok", pid: 42, version: "0.1.0", uptimeSeconds: 75, images: 1, layers: 2, fuseMountpoint: "/var/lib/lazypull/daemon/layers", layerStore: "/var/lib/lazypull/store", memory: { rss: 1, heapUsed: 1, heapTotal: 1, external: 0, arrayBuffers: 0 } },
  images: [
    {
      id: "0123456789abcdef",
      reference: "127.0.0.1:5000/lazy/app:v1",
      manifestDigest: digest("m"),
      config: { rootfs: { type: "layers", diff_ids: [] } },
      layers: [
        { digest: digest("a"), dir: "/l/a" },
        { digest: digest("b"), dir: "/l/b" },
      ],
      lowerDirs: ["/l/b", "/l/a"],
      fuseMountpoint: "/var/lib/lazypull/daemon/layers",
      pid: 777,
      createdAt: "2026-01-01T00:00:00.000Z",
    },
  ],
  layers: [
    { digest: digest("a"), dir: "/l/a", state: "complete", kind: "estargz", bytesFetched: 2048, bytesTotal: 2048, requests: 3, errors: 0, images: ["0123456789abcdef"] },
    { digest: digest("b"), dir: "/l/b", state: "error", kind: "estargz", bytesFetched: 512, bytesTotal: 2048, requests: 9, errors: 2, lastError: "EIO", images: ["0123456789abcdef"], store: { references: ["127.0.0.1:5000/lazy/app:v1"], uses: 2 } },
  ],
  cache: { dir: "/var/cache/lazypull", entries: 5, bytes: 1024, maxBytes: 4096, blobs: 2, pinnedBlobs: [], hits: 1, misses: 4, evictions: 0 },
};

describe("renderStatus", () => {
  it("should show images, per-layer progress and cache usage as aligned tables", () => {
    expect(renderStatus(snap).split("\n")).toEqual([
      "lazypulld 0.1.0  pid 42  up 1m15s  socket /run/lazypull/lazypulld.sock  mount /var/lib/lazypull/daemon/layers  podman layer store /var/lib/lazypull/store",
      "",
      "IMAGES (1)",
      "ID        REFERENCE                   MANIFEST             LAYERS  OWNER PID  SINCE",
      "01234567  127.0.0.1:5000/lazy/app:v1  sha256:mmmmmmmmmmmm  2       777        2026-01-01T00:00:00.000Z",
      "",
      "LAYERS (2)",
      "DIGEST               KIND     STATE     FETCHED            PROGRESS                 REQUESTS  ERRORS   IMAGES  PODMAN",
      "sha256:aaaaaaaaaaaa  estargz  complete  2.0 KiB / 2.0 KiB  [################] 100%  3         0        1       -",
      "sha256:bbbbbbbbbbbb  estargz  error     512 B / 2.0 KiB    [####------------]  25%  9         2 (EIO)  1       2",
      "",
      "CACHE  1.0 KiB of 4.0 KiB (25.0%), 5 entries from 2 blobs, /var/cache/lazypull",
      "",
    ]);
  });
});
