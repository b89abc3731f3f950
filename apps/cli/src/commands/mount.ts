import type { Command } from "commander";
import { createState, hookProcessSignals, mountImageRoot, processCleanup, unmountImageRoot } from "@lazypull/overlay-launcher";
import type { PrefetchPolicy } from "@lazypull/fuse-fs";
import { describeOverlay } from "../ui/overlay.js";
import { cleanupHost, loadHost, prepareHost } from "../host.js";
import { acquireImageLayersAnywhere } from "../image-layers.js";
import { CliError } from "../errors.js";
import { withRegistryFlags } from "../registry.js";
import { repeatedSignalWindowMs } from "../rootless.js";

/**
 * `lazypull mount IMAGE DIR`: the image's merged root filesystem at DIR, without a container. This
 * process serves the lazy layers, so it stays in the foreground until Ctrl-C, SIGTERM or
 * `lazypull umount DIR` (which signals it).
 */
export function register(program: Command): void {
  withRegistryFlags(program.command("mount"))
    .description("mount an image's root filesystem at DIR (copy-on-write, lazily fetched); stays in the foreground")
    .argument("<image>", "image reference")
    .argument("<dir>", "where to mount the merged root")
    .option("--platform <os/arch>", "platform to pick from a multi-platform image")
    .option("--prefetch <policy>", "none | landmark | all", "all")
    .option("--allow-unverified", "serve layers whose TOC digest is not in the manifest")
    .action(async (image: string, dir: string, flags: { platform?: string; prefetch: PrefetchPolicy; allowUnverified?: boolean }) => {
      const host = await prepareHost();
      const state = await createState(host, { target: dir });
      let release: (() => Promise<void>) | undefined;
      const stopped = new Promise<void>((resolve) => {
        processCleanup.push(`mount ${dir}`, async () => {
          await release?.();
          await state.destroy(host);
          resolve();
        });
      });
      // a signal runs the stack (unmount, remove state) and then exits 128+N
      hookProcessSignals({ stack: processCleanup, sameSignalWithinMs: repeatedSignalWindowMs() });
      try {
        const layers = await acquireImageLayersAnywhere(image, { state, platform: flags.platform, prefetch: flags.prefetch, allowUnverified: flags.allowUnverified });
        release = () => layers.release();
        const m = await mountImageRoot({ host, lowerDirs: layers.lowerDirs, overlayLowerDirs: layers.overlayLowerDirs, target: dir, state });
        process.stderr.write(
          `lazypull: ${layers.reference} mounted at ${m.target} (overlay: ${describeOverlay({ overlay: m.overlay.kind, overlayFallbackReason: m.overlay.fallbackReason })}); ` +
            `Ctrl-C or \`lazypull umount ${dir}\` to unmount\n`,
        );
      } catch (err) {
        await processCleanup.run();
        throw err;
      }
      await stopped;
    });

  program
    .command("umount")
    .description("unmount what `lazypull mount` mounted at DIR and stop the process serving it")
    .argument("<dir>", "the mount target")
    .action(async (dir: string) => {
      // DIR first: when the `lazypull mount` that made it was killed, undoing its leftovers is this
      // command's success, not something a general cleanup should take from under it
      const host = await loadHost();
      const report = await unmountImageRoot({ host, target: dir });
      if (report.errors.length) throw new CliError("CLI_UMOUNT_FAILED", `unmounting ${dir}: ${report.errors.join("; ")}`, { path: dir, errors: report.errors });
      await cleanupHost(host);
    });
}
