import type { OverlayKind } from "@lazypull/overlay-launcher";

/** "kernel", or "fuse-overlayfs (why not the kernel's)" for `run --stats` and `mount`. */
export function describeOverlay(o: { overlay: OverlayKind; overlayFallbackReason?: string | undefined }): string {
  return o.overlayFallbackReason ? `${o.overlay} (${o.overlayFallbackReason})` : o.overlay;
}
