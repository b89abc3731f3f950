// The Kubernetes manifests, checked without a cluster (CI has no kubectl): every YAML document against
// the Kubernetes schema of its kind (kubernetes-models' precompiled validators), fields the schema does
// not know (what kubectl's strict validation would refuse), and what lazypulld needs from its pod:
// the paths its real flag parser arrives at are host paths, FUSE, Bidirectional propagation, probes
// that work, the registries.conf drop-in and the storage.conf entry.
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { parse as parseToml } from "smol-toml";
import { afterAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { DaemonSet, type IDaemonSet } from "kubernetes-models/apps/v1/DaemonSet";
import { Deployment, type IDeployment } from "kubernetes-models/apps/v1/Deployment";
import { ConfigMap, type IConfigMap } from "kubernetes-models/v1/ConfigMap";
import type { IContainer } from "kubernetes-models/v1/Container";
import { Namespace } from "kubernetes-models/v1/Namespace";
import type { IPodSpec } from "kubernetes-models/v1/PodSpec";
import { Service, type IService } from "kubernetes-models/v1/Service";
import { ServiceAccount } from "kubernetes-models/v1/ServiceAccount";
import type { IVolume } from "kubernetes-models/v1/Volume";
import type { IVolumeMount } from "kubernetes-models/v1/VolumeMount";
import { loadConfig } from "@lazypull/daemon";
import { addLayerStore, storeEntry } from "@lazypull/layer-store";
import { isInsecureHost, loadRegistriesConf, pullSources } from "@lazypull/registry-client";

const here = dirname(fileURLToPath(import.meta.url));
const run = promisify(execFile);

/** The kinds these manifests may use; another kind fails until it is added here. */
const MODELS: Record<string, { prototype: { validate(): void } }> = {
  "v1/Namespace": Namespace,
  "v1/ServiceAccount": ServiceAccount,
  "v1/ConfigMap": ConfigMap,
  "v1/Service": Service,
  "apps/v1/DaemonSet": DaemonSet,
  "apps/v1/Deployment": Deployment,
};

/**
 * Validates one manifest against the schema of its apiVersion/kind; throws the schema's errors. Returns
 * the fields the schema does not know: the validators read every property their schema defines (also
 * absent ones) and every entry of a map, so a key never read in an object they looked into is unknown
 * to Kubernetes (typically mis-indented), which the schema alone would let through.
 */
function validate(doc: unknown): string[] {
  const { apiVersion, kind } = doc as { apiVersion?: unknown; kind?: unknown };
  const model = MODELS[`${String(apiVersion)}/${String(kind)}`];
  if (!model) throw new Error(`no schema for apiVersion ${String(apiVersion)}, kind ${String(kind)}`);
  const reads = new Map<object, { path: string; keys: Set<string> }>();
  const proxies = new Map<object, object>();
  const watch = (value: unknown, path: string): unknown => {
    if (value === null || typeof value !== "object") return value;
    let proxy = proxies.get(value);
    if (!proxy) {
      const keys = new Set<string>();
      reads.set(value, { path, keys });
      proxy = new Proxy(value, {
        get(target, key, receiver) {
          const v: unknown = Reflect.get(target, key, receiver);
          if (typeof key !== "string") return v;
          keys.add(key);
          return Object.hasOwn(target, key) ? watch(v, `${path}/${key}`) : v;
        },
      });
      proxies.set(value, proxy);
    }
    return proxy;
  };
  model.prototype.validate.call(watch(doc, ""));
  const unknown: string[] = [];
  for (const [obj, { path, keys }] of reads) {
    if (Array.isArray(obj) || keys.size === 0) continue; // an array, or an object the schema leaves free
    for (const key of Object.keys(obj)) if (!keys.has(key)) unknown.push(`${path}/${key}`);
  }
  return unknown;
}

/** Every non-empty document of a YAML stream, parsed as Kubernetes does (YAML 1.1: `on` is a boolean there). */
function yamlDocs(text: string, file: string): unknown[] {
  const out: unknown[] = [];
  for (const doc of parseAllDocuments(text, { version: "1.1", uniqueKeys: true })) {
    if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join("; ")}`);
    if (doc.warnings.length > 0) throw new Error(`${file}: ${doc.warnings.map((e) => e.message).join("; ")}`);
    const value: unknown = doc.toJS();
    if (value !== null && value !== undefined) out.push(value);
  }
  return out;
}

/** what every document has (the schema check makes sure of it); the rest is read through the kind's own type */
interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
}
type Workload = IDaemonSet | IDeployment;
/** the TOML files, as far as the checks read them */
interface RegistriesConf {
  registry: { prefix?: string; location?: string; insecure?: boolean; mirror?: { location: string; insecure?: boolean; "pull-from-mirror"?: string }[] }[];
}
interface StorageConf {
  storage: { options: { additionallayerstores: string[] } };
}

const files = readdirSync(here).filter((f) => f.endsWith(".yaml"));
const docs = files.flatMap((file) => yamlDocs(readFileSync(join(here, file), "utf8"), file).map((doc) => ({ file, doc: doc as Manifest })));
function find<T>(kind: string, name: string): T {
  const d = docs.find(({ doc }) => doc.kind === kind && doc.metadata?.name === name);
  if (!d) throw new Error(`no ${kind} ${name} in ${files.join(", ")}`);
  return d.doc as unknown as T;
}
const podOf = (w: Workload): IPodSpec => w.spec!.template.spec!;
function container(spec: IPodSpec, name: string): IContainer {
  const c = [...(spec.initContainers ?? []), ...spec.containers].find((c) => c.name === name);
  if (!c) throw new Error(`no container ${name}`);
  return c;
}
/** a copy of a manifest with room for what its type forbids (a broken field) */
const loose = (v: object): Record<string, unknown> => v as Record<string, unknown>;

const daemonSet = find<IDaemonSet>("DaemonSet", "lazypulld");
const pod = podOf(daemonSet);
const daemon = container(pod, "lazypulld");
const setup = container(pod, "node-setup");
const configMap = find<IConfigMap>("ConfigMap", "lazypulld-node-config");
const mirrorService = find<IService>("Service", "registry-mirror");
const mirrorDeployment = find<IDeployment>("Deployment", "registry-mirror");
const envOf = (c: IContainer, name: string) => c.env?.find((e) => e.name === name)?.value;
const scriptOf = (c: IContainer) => (c.command ?? []).join("\n");

const tmp = mkdtempSync(join(tmpdir(), "lazypull-deploy-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** lazypulld's config from the DaemonSet's args and env, through the daemon's own parser (no config file). */
async function daemonConfig() {
  const empty = join(tmp, "empty.json");
  writeFileSync(empty, "{}");
  const env: NodeJS.ProcessEnv = { LAZYPULL_DAEMON_CONFIG: empty };
  for (const e of daemon.env ?? []) env[e.name] = e.value;
  const cfg = await loadConfig(daemon.args ?? [], env);
  if (!cfg) throw new Error("the args asked for --help");
  return cfg;
}

/** The volume behind the mount of `c` that holds `path` (the longest mountPath that contains it). */
function volumeFor(c: IContainer, path: string): { mount: IVolumeMount; volume: IVolume | undefined } | undefined {
  const mounts = (c.volumeMounts ?? []).filter((m) => path === m.mountPath || path.startsWith(`${m.mountPath}/`));
  const mount = mounts.sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
  return mount && { mount, volume: pod.volumes?.find((v) => v.name === mount.name) };
}

describe("deploy/kubernetes manifests", () => {
  it("should parse every file into documents that pass the Kubernetes schema of their kind with no unknown field", () => {
    expect(files.sort()).toEqual(["lazypulld-daemonset.yaml", "registry-mirror.yaml"]);
    expect(docs.map(({ doc }) => `${doc.kind}/${doc.metadata.name}`).sort()).toEqual([
      "ConfigMap/lazypulld-node-config",
      "DaemonSet/lazypulld",
      "Deployment/registry-mirror",
      "Namespace/lazypull",
      "Service/registry-mirror",
    ]);
    for (const { file, doc } of docs) {
      expect(validate(doc), `${file}: ${doc.kind}/${doc.metadata.name}`).toEqual([]);
    }
  });

  it("should catch a broken manifest: a wrong type, a mis-indented field, an unknown kind", () => {
    const wrongType = structuredClone(daemonSet);
    loose(podOf(wrongType).containers[0]!).ports = "x";
    expect(() => validate(wrongType)).toThrow(/containers\/0\/ports must be array/);

    const misplaced = structuredClone(daemonSet);
    const mount = loose(podOf(misplaced).containers[0]!.volumeMounts!.find((m) => m.mountPropagation)!);
    mount.mountPropogation = mount.mountPropagation;
    delete mount.mountPropagation;
    expect(validate(misplaced)).toEqual([expect.stringMatching(/^\/spec\/template\/spec\/containers\/0\/volumeMounts\/\d+\/mountPropogation$/)]);

    const typo = structuredClone(mirrorService);
    loose(typo.spec!).clusterIp = typo.spec!.clusterIP;
    expect(validate(typo)).toEqual(["/spec/clusterIp"]);

    expect(() => validate({ apiVersion: "apps/v1", kind: "DaemonSett", metadata: { name: "x" } })).toThrow(/no schema for/);
  });

  it("should be consistent the way the API server would check: namespace, selector, volume names", () => {
    const namespaces = docs.filter(({ doc }) => doc.kind === "Namespace").map(({ doc }) => doc.metadata.name);
    for (const { doc } of docs.filter(({ doc }) => doc.kind !== "Namespace")) expect(namespaces).toContain(doc.metadata.namespace);
    const workloads = docs.filter(({ doc }) => doc.kind === "DaemonSet" || doc.kind === "Deployment").map(({ doc }) => doc as unknown as Workload);
    expect(workloads).toHaveLength(2);
    for (const w of workloads) {
      expect(w.spec!.template.metadata?.labels).toMatchObject(w.spec!.selector.matchLabels!);
      const spec = podOf(w);
      const volumes = new Set((spec.volumes ?? []).map((v) => v.name));
      for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
        for (const m of c.volumeMounts ?? []) expect(volumes, `${w.metadata?.name}/${c.name}: ${m.name}`).toContain(m.name);
      }
    }
    expect(mirrorService.spec?.selector).toEqual(mirrorDeployment.spec?.template.metadata?.labels);
  });

  it("should run lazypulld with flags its parser accepts, every path it uses on a host path, FUSE, and mounts that reach the host", async () => {
    const cfg = await daemonConfig();
    expect(cfg.store).not.toBe(false);
    const store = cfg.store as string;
    for (const path of [dirname(cfg.socket), cfg.root, store, cfg.cacheDir]) {
      const found = volumeFor(daemon, path);
      expect(found?.volume?.hostPath, path).toBeDefined();
      expect(found?.mount.readOnly, path).toBeFalsy();
    }
    // the FUSE mounts (the layers under --root, the store) must propagate to the host for CRI-O
    for (const path of [join(cfg.root, "layers"), store]) expect(volumeFor(daemon, path)?.mount.mountPropagation, path).toBe("Bidirectional");
    expect(daemon.securityContext?.privileged).toBe(true); // Bidirectional is refused otherwise
    expect(volumeFor(daemon, "/dev/fuse")?.volume?.hostPath).toEqual({ path: "/dev/fuse", type: "CharDevice" });
    expect(volumeFor(daemon, "/etc/containers/registries.conf")?.mount.readOnly).toBe(true);
    // the daemon's start-up sweep must not judge host processes from its own pid namespace
    expect(pod.hostPID).toBeUndefined();
    expect(envOf(daemon, "LAZYPULL_STATE_DIR")).toBeDefined();
    expect(envOf(daemon, "LAZYPULL_STATE_DIR")).not.toBe(dirname(cfg.socket));
    // lazypulld gives up 30 s into a stuck shutdown; the kubelet must wait longer than that
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(30);
    expect(daemonSet.spec?.updateStrategy?.type).toBe("OnDelete");
    expect(daemon.resources?.limits?.memory).toBeDefined();
  });

  it("should probe /healthz on the socket, with a one-liner that tells 200 from 503 and from no daemon", async () => {
    const cfg = await daemonConfig();
    const socket = join(tmp, "probe.sock");
    let status = 200;
    const server: Server = createServer((req, res) => {
      res.statusCode = req.url === "/healthz" ? status : 404;
      res.end("{}");
    });
    await new Promise<void>((resolve) => server.listen(socket, resolve));
    const probe = async (command: string[]): Promise<number> => {
      expect(command.join(" ")).toContain(cfg.socket);
      const [bin, ...args] = command.map((a) => a.replaceAll(cfg.socket, socket));
      return run(bin!, args).then(
        () => 0,
        (err: { code?: number }) => err.code ?? -1,
      );
    };
    try {
      for (const kind of ["readinessProbe", "livenessProbe"] as const) {
        const command = daemon[kind]?.exec?.command ?? [];
        expect(command.join(" "), kind).toContain("/healthz");
        status = 200;
        expect(await probe(command), `${kind}, 200`).toBe(0);
        status = 503;
        expect(await probe(command), `${kind}, 503`).toBe(1);
      }
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
    expect(await probe(daemon.livenessProbe?.exec?.command ?? []), "no daemon").toBe(1);
  });

  it("should point CRI-O's storage.conf at the store lazypulld serves, in the syntax `lazypull podman setup` writes", async () => {
    const store = (await daemonConfig()).store as string;
    const storageConf = (text: string) => parseToml(text) as unknown as StorageConf;
    expect(storageConf(configMap.data?.["storage.conf.snippet"] ?? "").storage.options.additionallayerstores).toEqual([storeEntry(store)]);
    expect(storageConf(addLayerStore("", store).text).storage.options.additionallayerstores).toEqual([storeEntry(store)]);
    const script = scriptOf(setup);
    expect(script).toContain(`lazypull podman setup --store ${store} --storage-conf /host/etc/containers/storage.conf`);
    expect(volumeFor(setup, "/host/etc/containers/storage.conf")?.volume?.hostPath?.path).toBe("/etc/containers");
    expect(volumeFor(setup, "/run/lazypull")?.volume?.hostPath?.path).toBe("/run/lazypull");
    expect(script).toMatch(/chmod 0700 \/run\/lazypull/);
  });

  it("should ship a registries.conf drop-in that parses, mirrors docker.io at the in-cluster cache and sends lazypulld's ranges there too", async () => {
    const onDisk = readFileSync(join(here, "registries-mirror.conf"), "utf8");
    expect(configMap.data?.["registries-mirror.conf"]).toBe(onDisk);
    const conf = parseToml(onDisk) as unknown as RegistriesConf;
    const mirror = conf.registry.find((r) => r.prefix === "docker.io")?.mirror?.[0];
    if (!mirror) throw new Error("no mirror for docker.io");
    expect(mirror.location).toBe(`${mirrorService.spec?.clusterIP}:${mirrorService.spec?.ports?.[0]?.port}`);
    expect(mirror.insecure).toBe(true); // registry:2 in the cluster speaks plain HTTP
    expect(mirror["pull-from-mirror"]).toBe("all");
    // lazypulld reads the same drop-in: its registry client sends a docker.io blob range to the cache first
    const dir = mkdtempSync(join(tmpdir(), "deploy-conf-"));
    try {
      writeFileSync(join(dir, "registries.conf"), "");
      mkdirSync(join(dir, "registries.conf.d"));
      writeFileSync(join(dir, "registries.conf.d", "50-lazypull-mirror.conf"), onDisk);
      const loaded = await loadRegistriesConf({ path: join(dir, "registries.conf"), dropInDir: join(dir, "registries.conf.d") });
      expect(pullSources(loaded, "docker.io", "library/debian", true).map((s) => `${s.registry}/${s.repository}`)).toEqual([
        `${mirror.location}/library/debian`,
        "docker.io/library/debian",
      ]);
      expect(isInsecureHost(loaded, mirror.location)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(scriptOf(setup)).toContain("cp /config/registries-mirror.conf /host/etc/containers/registries.conf.d/");
    expect(envOf(podOf(mirrorDeployment).containers[0]!, "REGISTRY_PROXY_REMOTEURL")).toBe("https://registry-1.docker.io");
  });
});
