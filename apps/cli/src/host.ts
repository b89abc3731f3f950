import { cleanupLeftovers, loadHostConfig, type HostConfig } from "@lazypull/overlay-launcher";

/**
 * The host config for this invocation (`$LAZYPULL_CONFIG` or /etc/lazypull/config.json), with
 * `$LAZYPULL_STATE_DIR` moving the state root (tests and demos keep their state apart), after
 * cleaning up what a killed lazypull left behind.
 */
export async function prepareHost(): Promise<HostConfig> {
  const host = await loadHost();
  await cleanupHost(host);
  return host;
}

/** The host config without touching leftovers (`umount` handles its own target first). */
export async function loadHost(): Promise<HostConfig> {
  const stateDir = process.env.LAZYPULL_STATE_DIR;
  return loadHostConfig(stateDir ? { overrides: { stateRoot: stateDir } } : {});
}

/** Unmounts and removes what killed lazypull processes left behind, saying so on stderr. */
export async function cleanupHost(host: HostConfig): Promise<void> {
  const reports = await cleanupLeftovers(host);
  for (const r of reports) {
    const what = r.unmounted.length ? `unmounted ${r.unmounted.join(", ")}` : "removed its state";
    process.stderr.write(`lazypull: cleaned up after dead process ${r.ownerPid ?? "?"}: ${what}${r.errors.length ? ` (errors: ${r.errors.join("; ")})` : ""}\n`);
  }
}
