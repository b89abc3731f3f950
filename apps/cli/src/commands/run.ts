import { join } from "node:path";
import { InvalidArgumentError, type Command } from "commander";
import { createState, hookProcessSignals, launchContainer, processCleanup, warmContainerRuntime } from "@lazypull/overlay-launcher";
import type { PrefetchPolicy } from "@lazypull/fuse-fs";
import type { StartCommand } from "@lazypull/image";
import { writeImageAccessList } from "../access-list.js";
import { prepareHost } from "../host.js";
import { acquireImageLayersAnywhere } from "../image-layers.js";
import { formatBytes, formatDuration } from "../ui/progress.js";
import { describeOverlay } from "../ui/overlay.js";
import { whenFirstRequestSent } from "../first-request.js";
import { createRegistryClient, withRegistryFlags } from "../registry.js";
import { repeatedSignalWindowMs } from "../rootless.js";

interface RunFlags {
  rm?: boolean;
  name?: string;
  interactive?: boolean;
  tty?: boolean;
  env: string[];
  volume: string[];
  workdir?: string;
  user?: string;
  entrypoint?: string;
  network?: string;
  platform?: string;
  prefetch: PrefetchPolicy;
  keep?: boolean;
  stats?: boolean;
  allowUnverified?: boolean;
  recordAccess?: string;
  predict: boolean;
}

const collect = (v: string, prev: string[]) => [...prev, v];

/** ` from mirror:5000 (2.1 MB), registry:5000 (40 kB)`: which hosts sent the bytes, most first */
function servedBy(hosts: Record<string, number> | undefined): string {
  const list = Object.entries(hosts ?? {}).filter(([, n]) => n > 0);
  if (list.length === 0) return "";
  list.sort((a, b) => b[1] - a[1]);
  return ` from ${list.map(([h, n]) => `${h} (${formatBytes(n)})`).join(", ")}`;
}

/** the start podman will make, as predictive prefetch wants it (`-e K` copies K from here, as podman does) */
function startOf(command: string[], flags: RunFlags): StartCommand {
  const env = flags.env.flatMap((kv) => (kv.includes("=") ? [kv] : process.env[kv] !== undefined ? [`${kv}=${process.env[kv]}`] : []));
  let entrypoint: string[] | undefined;
  if (flags.entrypoint !== undefined) {
    try {
      // podman takes a JSON array too
      const parsed: unknown = flags.entrypoint.startsWith("[") ? JSON.parse(flags.entrypoint) : undefined;
      entrypoint = Array.isArray(parsed) && parsed.every((a) => typeof a === "string") ? parsed : [flags.entrypoint];
    } catch {
      entrypoint = [flags.entrypoint];
    }
  }
  return { command, env, ...(entrypoint ? { entrypoint } : {}), ...(flags.workdir ? { workdir: flags.workdir } : {}) };
}

function prefetchPolicy(v: string): PrefetchPolicy {
  if (v === "none" || v === "landmark" || v === "all") return v;
  throw new InvalidArgumentError(`--prefetch must be none, landmark or all, got ${v}`);
}

/**
 * `lazypull run IMAGE [CMD…]`: serve the image's layers lazily, stack them with fuse-overlayfs and
 * run podman on the result; the container's exit code is ours. Everything mounted is undone on exit,
 * error and SIGINT/SIGTERM (the launcher forwards the signal to the container first).
 */
export function register(program: Command): void {
  withRegistryFlags(program.command("run"))
    .description("run a container from a registry image without pulling it")
    .argument("<image>", "image reference (eStargz images are served lazily; others are fetched whole)")
    .argument("[command...]", "command and arguments (replace the image's Cmd)")
    .option("--rm", "remove the container when it exits")
    .option("--name <name>", "container name")
    .option("-i, --interactive", "keep stdin open")
    .option("-t, --tty", "allocate a terminal")
    .option("-e, --env <K=V>", "set an environment variable (repeatable; K alone copies it from here)", collect, [])
    .option("-v, --volume <SRC:DST>", "bind mount (repeatable)", collect, [])
    .option("-w, --workdir <dir>", "working directory inside the container")
    .option("-u, --user <user>", "user[:group] to run as")
    .option("--entrypoint <cmd>", "override the image's entrypoint")
    .option("--network <mode>", "podman network mode")
    .option("--platform <os/arch>", "platform to pick from a multi-platform image")
    // Not "all" by default: on 2 cores, inflating the whole blob in the background slows a short
    // container's start 2-4x (measured: 0.62 s vs 2.77 s to exit for `cat` on Debian); lazypulld,
    // which outlives containers, is where background completion pays off.
    .option("--prefetch <policy>", "none | landmark | all (landmark range, then the rest in the background)", prefetchPolicy, "landmark")
    .option("--keep", "keep the container's state dir (its changes) after exit")
    .option("--stats", "print start time and bytes fetched on stderr even when it is not a terminal")
    .option("--allow-unverified", "serve layers whose TOC digest is not in the manifest")
    .option("--no-predict", "do not fetch ahead what the start is predicted to read (the program, its libraries, /etc/passwd…)")
    .option("--record-access <file>", "write the image paths in the order they were first read (input for convert --prioritize)")
    .passThroughOptions()
    .action(async (image: string, command: string[], flags: RunFlags) => {
      const t0 = performance.now();
      // registries.conf is read while the host is prepared, not after: the first request needs it
      const client = createRegistryClient({ platform: flags.platform });
      client.prepare();
      const host = await prepareHost();
      // podman's pages come in from disk while the image's manifest and TOCs come in from the registry —
      // once the first request is out: before it, those reads slow this process's own cold start
      whenFirstRequestSent(() => warmContainerRuntime(host));
      hookProcessSignals({ stack: processCleanup, sameSignalWithinMs: repeatedSignalWindowMs() });
      // the state dir is made while the image is resolved (cold, ~30–40 ms of directory and file
      // writes): the registry requests need none of it, the FUSE mount inside it waits for it
      const creating = createState(host);
      creating.catch(() => undefined);
      let layers: Awaited<ReturnType<typeof acquireImageLayersAnywhere>> | undefined;
      const teardown = processCleanup.push(`container of ${image}`, async () => {
        await layers?.release();
        // not made (its error is the run's): nothing of it to remove
        const state = await creating.catch(() => undefined);
        if (!state) return;
        if (flags.recordAccess) await writeImageAccessList(join(state.dir, "access.log"), flags.recordAccess);
        const report = await state.destroy(host, { keep: flags.keep });
        if (report.errors.length) process.stderr.write(`lazypull: cleanup: ${report.errors.join("; ")}\n`);
      });
      let exitCode = 1;
      try {
        const accessLogPath = flags.recordAccess ? join((await creating).dir, "access.log") : undefined;
        layers = await acquireImageLayersAnywhere(image, {
          state: creating,
          platform: flags.platform,
          client,
          // the overlay and podman start while the TOCs are read; a lookup below a layer still opening waits
          early: true,
          prefetch: flags.prefetch,
          allowUnverified: flags.allowUnverified,
          accessLogPath,
          ...(flags.predict ? { start: startOf(command, flags) } : { predict: false }),
        });
        let ready = performance.now() - t0;
        const opened = (layers.ready ?? Promise.resolve()).then(() => (ready = performance.now() - t0));
        opened.catch(() => undefined);
        const state = await creating;
        // a layer that could not be opened answered EIO to the container: its reason is the error to show
        const res = await launchContainer({
          host,
          lowerDirs: layers.lowerDirs,
          overlayLowerDirs: layers.overlayLowerDirs,
          image: layers.config,
          state,
          keep: flags.keep,
          stdio: "inherit",
          run: {
            args: command,
            entrypoint: flags.entrypoint,
            env: flags.env,
            volumes: flags.volume,
            workdir: flags.workdir,
            user: flags.user,
            network: flags.network,
            name: flags.name,
            rm: flags.rm,
            interactive: flags.interactive,
            tty: flags.tty,
          },
        }).catch(async (err: unknown) => {
          await opened;
          throw err;
        });
        await opened;
        exitCode = res.exitCode;
        if (flags.stats || process.stderr.isTTY) {
          const s = await layers.stats();
          const p = await layers.prediction;
          process.stderr.write(
            `lazypull: image ready in ${formatDuration(ready)}, container exited ${exitCode} after ${formatDuration(performance.now() - t0)}; ` +
              `fetched ${formatBytes(s.bytesFetched)} in ${s.requests} requests${servedBy(s.hosts)}${layers.via === "daemon" ? " (layers served by lazypulld)" : ""}; ` +
              `overlay: ${describeOverlay(res)}${s.fuseOps !== undefined ? `; ${s.fuseOps} FUSE ops` : ""}` +
              `${p ? `; predicted ${p.files.length} files (${formatBytes(p.bytes)}) for the start` : ""}\n`,
          );
        }
      } finally {
        await teardown.run();
      }
      process.exitCode = exitCode;
    });
}
