import { run } from "@lazypull/testkit";

/** A link profile: the rate `tbf` shapes each direction to, and the round-trip time the proxy adds. */
export interface LinkProfile {
  name: string;
  rateMbit: number;
  rttMs: number;
}

export const PROFILES: Record<string, LinkProfile> = {
  "100mbit/20ms-rtt": { name: "100mbit/20ms-rtt", rateMbit: 100, rttMs: 20 },
  "20mbit/50ms-rtt": { name: "20mbit/50ms-rtt", rateMbit: 20, rttMs: 50 },
};

export interface ShapedLink {
  netns: string;
  /** the root namespace's end of the veth pair */
  hostAddr: string;
  /** the address inside the namespace (where the registry listens) */
  nsAddr: string;
  destroy(): Promise<void>;
}

/**
 * Makes a network namespace joined to the root namespace by a veth pair, both ends shaped by `tbf`
 * to the profile's rate. The kernel here has no `netem`, so delay is the proxy's job, not tc's.
 * Addresses are a private /30 that exists only on this pair.
 */
export async function createShapedLink(profile: LinkProfile, id = process.pid % 200): Promise<ShapedLink> {
  const netns = `lpbench${id}`;
  const hostIf = `lpb${id}h`;
  const nsIf = `lpb${id}n`;
  const octet = 4 * (id % 60);
  const hostAddr = `10.213.${id % 250}.${octet + 1}`;
  const nsAddr = `10.213.${id % 250}.${octet + 2}`;
  const ip = (...args: string[]) => run("ip", args);
  const inNs = (cmd: string, ...args: string[]) => run("ip", ["netns", "exec", netns, cmd, ...args]);
  const destroy = async () => {
    await run("ip", ["link", "del", hostIf], { allowFail: true });
    await run("ip", ["netns", "del", netns], { allowFail: true });
  };
  await destroy(); // leftovers of a killed run with the same id
  try {
    await ip("netns", "add", netns);
    await ip("link", "add", hostIf, "type", "veth", "peer", "name", nsIf);
    await ip("link", "set", nsIf, "netns", netns);
    await ip("addr", "add", `${hostAddr}/30`, "dev", hostIf);
    await ip("link", "set", hostIf, "up");
    await inNs("ip", "addr", "add", `${nsAddr}/30`, "dev", nsIf);
    await inNs("ip", "link", "set", nsIf, "up");
    await inNs("ip", "link", "set", "lo", "up");
    // burst must hold at least one timer tick of traffic at the rate (HZ may be 100): rate/100 bytes, min 64 KiB
    const burst = `${Math.max(64 * 1024, Math.ceil((profile.rateMbit * 1e6) / 8 / 100))}`;
    const tbf = ["root", "tbf", "rate", `${profile.rateMbit}mbit`, "burst", burst, "latency", "100ms"];
    await run("tc", ["qdisc", "add", "dev", hostIf, ...tbf]);
    await inNs("tc", "qdisc", "add", "dev", nsIf, ...tbf);
  } catch (err) {
    await destroy();
    throw err;
  }
  return { netns, hostAddr, nsAddr, destroy };
}
