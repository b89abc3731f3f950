import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  findRegistry,
  isInsecureHost,
  isShortName,
  loadRegistriesConf,
  mergeRegistriesConf,
  parseRegistriesConf,
  pullSources,
  shortNameCandidates,
  type RegistriesConf,
} from "./registries-conf.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "rc-regconf-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const conf = (text: string, file = "/t/registries.conf"): RegistriesConf => mergeRegistriesConf([parseRegistriesConf(text, file)]);
const where = (c: RegistriesConf, name: string) => findRegistry(c, name)?.prefix;
const srcs = (c: RegistriesConf, reg: string, repo: string, byDigest = false) =>
  pullSources(c, reg, repo, byDigest).map((s) => `${s.mirror ? "M " : ""}${s.registry}/${s.repository}${s.insecure ? " (insecure)" : ""}`);

function thrown(f: () => unknown): { code?: string; message?: string; context?: Record<string, unknown> } {
  try {
    f();
  } catch (e) {
    return e as never;
  }
  throw new Error("expected a throw");
}

describe("parseRegistriesConf", () => {
  it("should default prefix to location, strip trailing slashes and fill the defaults", () => {
    const c = conf('[[registry]]\nlocation = "reg.io:5000/team/"\n');
    expect(c.registries).toEqual([{ prefix: "reg.io:5000/team", location: "reg.io:5000/team", insecure: false, blocked: false, mirrors: [], file: "/t/registries.conf" }]);
    expect(c.shortNameMode).toBe("permissive");
    expect(c.credentialHelpers).toEqual(["containers-auth.json"]);
    expect(c.unqualifiedSearchRegistries).toEqual([]);
    expect(c.files).toEqual(["/t/registries.conf"]);
  });

  it("should keep the first entry of a prefix within one file, and sort entries by prefix", () => {
    const c = conf('[[registry]]\nprefix = "z.io"\nlocation = "one.io"\n[[registry]]\nprefix = "z.io"\nlocation = "two.io"\n[[registry]]\nlocation = "a.io"\n');
    expect(c.registries.map((r) => `${r.prefix}=${r.location}`)).toEqual(["a.io=a.io", "z.io=one.io"]);
  });

  it("should convert v1 as containers/image does: one entry per location, search list kept", () => {
    const l = parseRegistriesConf('[registries.search]\nregistries = ["docker.io", "quay.io"]\n[registries.insecure]\nregistries = ["a.io:5000", "b.io"]\n[registries.block]\nregistries = ["b.io/"]\n', "/t/v1.conf");
    expect(l.format).toBe("v1");
    expect(l.unqualifiedSearchRegistries).toEqual(["docker.io", "quay.io"]);
    expect(l.registries.map((r) => [r.prefix, r.location, r.insecure, r.blocked])).toEqual([
      ["b.io", "b.io", true, true],
      ["a.io:5000", "a.io:5000", true, false],
    ]);
  });

  it("should reject a file mixing v1 and v2, even with an empty v1 list", () => {
    const e = thrown(() => parseRegistriesConf('unqualified-search-registries = ["docker.io"]\n[registries.insecure]\nregistries = []\n', "/t/mixed.conf"));
    expect(e).toMatchObject({ code: "REGISTRY_CONFIG_INVALID", context: { file: "/t/mixed.conf" } });
    expect(e.message).toContain("/t/mixed.conf");
    expect(e.message).toContain("mixing");
  });

  it("should name the file on bad TOML", () => {
    const e = thrown(() => parseRegistriesConf("[[registry]\nlocation = ", "/t/bad.conf"));
    expect(e).toMatchObject({ code: "REGISTRY_CONFIG_INVALID", context: { file: "/t/bad.conf" } });
    expect(e.message).toContain("/t/bad.conf");
  });

  it.each([
    ['[[registry]]\nlocation = "https://reg.io"\n', "https://reg.io", "URI schemes"],
    ['[[registry]]\nprefix = "http://reg.io"\nlocation = "reg.io"\n', "http://reg.io", "URI schemes"],
    ['[[registry]]\nprefix = "reg.io/foo"\n', "reg.io/foo", "location is unset"],
    ["[[registry]]\ninsecure = true\n", "#1", "both location and prefix"],
    ['[[registry]]\nprefix = "*.example.com:5000"\n', "*.example.com:5000", "wildcard"],
    ['[[registry]]\nprefix = "*.example.com/foo"\n', "*.example.com/foo", "wildcard"],
    ['[[registry]]\nlocation = "reg.io"\n[[registry.mirror]]\nlocation = "m.io"\npull-from-mirror = "sometimes"\n', "reg.io", "pull-from-mirror"],
    ['[[registry]]\nlocation = "reg.io"\nmirror-by-digest-only = true\n[[registry.mirror]]\nlocation = "m.io"\npull-from-mirror = "all"\n', "reg.io", "mirror-by-digest-only"],
    ['[[registry]]\nlocation = "reg.io"\npull-from-mirror = "all"\n', "reg.io", "pull-from-mirror"],
    ['[[registry]]\nlocation = "reg.io"\n[[registry.mirror]]\ninsecure = true\n', "reg.io", "mirror location"],
    ['[[registry]]\nlocation = "reg.io"\ninsecure = "yes"\n', "reg.io", "insecure"],
    ['[[registry]]\nprefix = "a.io"\nlocation = "reg.io"\ninsecure = true\n[[registry]]\nprefix = "b.io"\nlocation = "reg.io"\n', "b.io", "conflicting 'insecure'"],
  ])("should reject entry %j naming the file and the entry", (text, prefix, why) => {
    const e = thrown(() => parseRegistriesConf(text, "/t/e.conf"));
    expect(e).toMatchObject({ code: "REGISTRY_CONFIG_INVALID", context: { file: "/t/e.conf", prefix } });
    expect(e.message).toContain("/t/e.conf");
    expect(e.message).toContain(why);
  });

  it.each([
    ['unqualified-search-registries = ["reg.io/ns"]\n', "unqualified-search-registries"],
    ['short-name-mode = "prompt"\n', "short-name-mode"],
    ['[aliases]\n"quay.io/x" = "quay.io/x/y"\n', "short name"],
    ['[aliases]\nfoo = "foo/bar"\n', "alias"],
    ['[aliases]\nfoo = "quay.io/foo:1"\n', "alias"],
  ])("should reject top-level value %j", (text, why) => {
    const e = thrown(() => parseRegistriesConf(text, "/t/top.conf"));
    expect(e).toMatchObject({ code: "REGISTRY_CONFIG_INVALID", context: { file: "/t/top.conf" } });
    expect(e.message).toContain(why);
  });

  it("should read mirrors in order with their pull-from-mirror, and turn mirror-by-digest-only into digest-only", () => {
    const c = conf(
      '[[registry]]\nlocation = "a.io"\n[[registry.mirror]]\nlocation = "m1.io"\n[[registry.mirror]]\nlocation = "m2.io"\ninsecure = true\npull-from-mirror = "tag-only"\n' +
        '[[registry]]\nlocation = "b.io"\nmirror-by-digest-only = true\n[[registry.mirror]]\nlocation = "m3.io"\n',
    );
    expect(c.registries[0]?.mirrors).toEqual([
      { location: "m1.io", insecure: false, pullFromMirror: "all" },
      { location: "m2.io", insecure: true, pullFromMirror: "tag-only" },
    ]);
    expect(c.registries[1]?.mirrors).toEqual([{ location: "m3.io", insecure: false, pullFromMirror: "digest-only" }]);
  });
});

describe("findRegistry", () => {
  const c = conf(
    ['"example.com"', '"example.com/foo"', '"example.com/foo/bar"', '"*.example.com"', '"a.example.com/x"', '"b.example.com"', '"bb.example.com"', '"*.b.example.com"', '"*.c.example.com"', '"d.c.example.com"']
      .map((p) => `[[registry]]\nprefix = ${p}\nlocation = "loc.io"\n`)
      .join(""),
  );

  it("should take the longest prefix on whole path components", () => {
    expect(where(c, "example.com/foo/bar/app")).toBe("example.com/foo/bar");
    expect(where(c, "example.com/foo/barn")).toBe("example.com/foo");
    expect(where(c, "example.com/foo")).toBe("example.com/foo");
    expect(where(c, "example.com/foobar")).toBe("example.com");
    expect(where(c, "example.com/foo:v1")).toBe("example.com/foo");
    expect(where(c, "example.comm/foo")).toBeUndefined();
    expect(where(c, "other.io/foo")).toBeUndefined();
  });

  it("should not let a host-only prefix match the same host with a port", () => {
    expect(where(c, "example.com:5000/foo")).toBeUndefined();
  });

  it("should match wildcards on the host at any depth and port, with containers/image's length rule", () => {
    expect(where(c, "x.example.com/app")).toBe("*.example.com");
    expect(where(c, "x.y.example.com:5000/app")).toBe("*.example.com");
    expect(where(c, "example.com.evil.io/app")).toBeUndefined();
    // a longer exact prefix wins over a wildcard…
    expect(where(c, "a.example.com/x/app")).toBe("a.example.com/x");
    expect(where(c, "a.example.com/y/app")).toBe("*.example.com");
    expect(where(c, "q.b.example.com/app")).toBe("*.b.example.com");
    expect(where(c, "bb.example.com/app")).toBe("bb.example.com");
    // equal lengths (a one-letter first label) go to the first in prefix order, which is the wildcard
    expect(where(c, "b.example.com/app")).toBe("*.example.com");
    expect(where(c, "d.c.example.com/app")).toBe("*.c.example.com");
  });
});

describe("pullSources", () => {
  const c = conf(
    '[[registry]]\nprefix = "example.com/foo"\nlocation = "internal:5000/bar"\n' +
      '[[registry.mirror]]\nlocation = "m-all.io/cache"\n' +
      '[[registry.mirror]]\nlocation = "m-digest.io"\ninsecure = true\npull-from-mirror = "digest-only"\n' +
      '[[registry.mirror]]\nlocation = "m-tag.io"\npull-from-mirror = "tag-only"\n' +
      '[[registry]]\nlocation = "legacy.io"\ninsecure = true\nmirror-by-digest-only = true\n[[registry.mirror]]\nlocation = "lm.io"\n' +
      '[[registry]]\nprefix = "*.corp.io"\nblocked = false\n[[registry.mirror]]\nlocation = "corp-mirror.io/ns"\n' +
      '[[registry]]\nlocation = "bad.io"\nblocked = true\n',
    "/t/pull.conf",
  );

  it("should rewrite the prefix to each endpoint's location, mirrors first, filtered by pull-from-mirror", () => {
    expect(srcs(c, "example.com", "foo/app")).toEqual(["M m-all.io/cache/app", "M m-tag.io/app", "internal:5000/bar/app"]);
    expect(srcs(c, "example.com", "foo/app", true)).toEqual(["M m-all.io/cache/app", "M m-digest.io/app (insecure)", "internal:5000/bar/app"]);
    expect(pullSources(c, "example.com", "foo/a/b", false).at(-1)).toEqual({ registry: "internal:5000", repository: "bar/a/b", insecure: false, mirror: false });
  });

  it("should use mirror-by-digest-only mirrors for digests only", () => {
    expect(srcs(c, "legacy.io", "app")).toEqual(["legacy.io/app (insecure)"]);
    expect(srcs(c, "legacy.io", "app", true)).toEqual(["M lm.io/app", "legacy.io/app (insecure)"]);
  });

  it("should keep the name for a wildcard without location, but rewrite its mirrors' host", () => {
    expect(srcs(c, "x.corp.io", "team/app")).toEqual(["M corp-mirror.io/ns/team/app", "x.corp.io/team/app"]);
  });

  it("should return the name itself when no entry matches, docker.io untouched", () => {
    expect(pullSources(c, "docker.io", "library/debian", false)).toEqual([{ registry: "docker.io", repository: "library/debian", insecure: false, mirror: false }]);
    expect(srcs(c, "example.com", "foobar/app")).toEqual(["example.com/foobar/app"]);
  });

  it("should refuse a blocked entry with REGISTRY_BLOCKED naming the file", () => {
    const e = thrown(() => pullSources(c, "bad.io", "x/app", true));
    expect(e).toMatchObject({ code: "REGISTRY_BLOCKED", context: { file: "/t/pull.conf", prefix: "bad.io", registry: "bad.io", repository: "x/app" } });
    expect(e.message).toContain("/t/pull.conf");
  });

  it("should refuse a rewrite that leaves no repository", () => {
    const d = conf('[[registry]]\nprefix = "example.com/app"\nlocation = "internal:5000"\n', "/t/norepo.conf");
    expect(thrown(() => pullSources(d, "example.com", "app", false))).toMatchObject({ code: "REGISTRY_CONFIG_INVALID", context: { file: "/t/norepo.conf" } });
  });
});

describe("short names", () => {
  it("should tell short names as docker's reference rules do", () => {
    const names = ["debian", "debian:12", "library/debian", "debian@sha256:" + "a".repeat(64), "localhost/app", "localhost:5000/app", "reg.io/app", "localhost", "a:b/c"];
    expect(names.map(isShortName)).toEqual([true, true, true, true, false, false, false, true, false]);
  });

  const search = 'unqualified-search-registries = ["registry.fedoraproject.org", "docker.io"]\n';

  it("should complete with each search registry, adding library/ on docker.io and carrying the tag", () => {
    const c = conf(search);
    expect(shortNameCandidates(c, "fedora:39")).toEqual(["registry.fedoraproject.org/fedora:39", "docker.io/library/fedora:39"]);
    expect(shortNameCandidates(c, "team/app")).toEqual(["registry.fedoraproject.org/team/app", "docker.io/team/app"]);
    expect(shortNameCandidates(c, "quay.io/team/app")).toEqual(["quay.io/team/app"]);
    expect(shortNameCandidates(conf(""), "fedora")).toEqual([]);
  });

  it("should prefer an alias, normalised, with tag and digest carried over", () => {
    const c = conf(`${search}[aliases]\nfedora = "registry.fedoraproject.org/fedora"\n"team/app" = "docker.io/app"\n`);
    const digest = "sha256:" + "b".repeat(64);
    expect(shortNameCandidates(c, "fedora")).toEqual(["registry.fedoraproject.org/fedora"]);
    expect(shortNameCandidates(c, `fedora:39@${digest}`)).toEqual([`registry.fedoraproject.org/fedora:39@${digest}`]);
    expect(shortNameCandidates(c, "team/app:1")).toEqual(["docker.io/library/app:1"]);
    expect(() => shortNameCandidates(c, "Bad Name")).toThrow(expect.objectContaining({ code: "REFERENCE_INVALID" }));
  });

  it("should fail in enforcing mode only when ambiguous and no alias resolves it", () => {
    const c = conf(`${search}short-name-mode = "enforcing"\n[aliases]\nfedora = "registry.fedoraproject.org/fedora"\n`, "/t/enf.conf");
    const e = thrown(() => shortNameCandidates(c, "ubuntu"));
    expect(e).toMatchObject({ code: "REFERENCE_AMBIGUOUS", context: { reference: "ubuntu", candidates: ["registry.fedoraproject.org/ubuntu", "docker.io/library/ubuntu"] } });
    expect(e.message).toContain("/t/enf.conf");
    expect(shortNameCandidates(c, "fedora")).toEqual(["registry.fedoraproject.org/fedora"]);
    const one = conf('unqualified-search-registries = ["quay.io"]\nshort-name-mode = "enforcing"\n');
    expect(shortNameCandidates(one, "app")).toEqual(["quay.io/app"]);
    expect(shortNameCandidates(conf(`${search}short-name-mode = "disabled"\n`), "ubuntu")).toHaveLength(2);
  });
});

describe("isInsecureHost", () => {
  const c = conf(
    '[[registry]]\nprefix = "example.com/foo"\nlocation = "internal:5000/bar"\ninsecure = true\n' +
      '[[registry]]\nlocation = "secure.io"\n[[registry.mirror]]\nlocation = "mirror.lan:8080/cache"\ninsecure = true\n[[registry.mirror]]\nlocation = "tls-mirror.io"\n' +
      '[[registry]]\nprefix = "*.lab.internal"\ninsecure = true\n',
  );

  it("should follow locations' hosts, mirrors and wildcard prefixes", () => {
    const hosts = ["internal:5000", "internal", "example.com", "mirror.lan:8080", "tls-mirror.io", "secure.io", "a.lab.internal:5000", "lab.internal"];
    expect(hosts.map((h) => isInsecureHost(c, h))).toEqual([true, false, false, true, false, false, true, false]);
  });
});

describe("loadRegistriesConf", () => {
  it("should layer drop-ins in lexical order: entries by prefix, top-level keys replaced, aliases merged", async () => {
    const root = await mkdtemp(join(dir, "layers-"));
    const main = join(root, "registries.conf");
    const dropIns = join(root, "registries.conf.d");
    await mkdir(join(dropIns, "sub.conf"), { recursive: true });
    await writeFile(
      main,
      'unqualified-search-registries = ["a.io", "b.io"]\ncredential-helpers = ["pass"]\n' +
        '[[registry]]\nlocation = "keep.io"\n[[registry]]\nprefix = "over.io"\nlocation = "main-loc.io"\n' +
        '[aliases]\nx = "a.io/x"\ny = "a.io/y"\nz = "a.io/z"\n',
    );
    // written out of order on purpose: the read order must be by name
    await writeFile(join(dropIns, "20-late.conf"), '[[registry]]\nprefix = "over.io"\nlocation = "late-loc.io"\n[aliases]\ny = "c.io/y"\n');
    await writeFile(join(dropIns, "10-early.conf"), '[[registry]]\nprefix = "over.io"\nlocation = "early-loc.io"\ninsecure = true\nshort-name-mode = "disabled"\n[aliases]\nz = ""\n');
    await writeFile(join(dropIns, "05-search.conf"), 'unqualified-search-registries = ["c.io"]\n');
    await writeFile(join(dropIns, "99-ignored.conf.bak"), "this is not toml = = =");
    await writeFile(join(dropIns, "sub.conf", "inner.conf"), "not read either = = =");

    const c = await loadRegistriesConf({ path: main, dropInDir: dropIns, env: {} });
    expect(c.files).toEqual([main, join(dropIns, "05-search.conf"), join(dropIns, "10-early.conf"), join(dropIns, "20-late.conf")]);
    expect(c.registries.map((r) => `${r.prefix}=${r.location}${r.insecure ? "!" : ""}`)).toEqual(["keep.io=keep.io", "over.io=late-loc.io"]);
    expect(findRegistry(c, "over.io/app")?.file).toBe(join(dropIns, "20-late.conf"));
    expect(c.unqualifiedSearchRegistries).toEqual(["c.io"]);
    expect(c.credentialHelpers).toEqual(["pass"]);
    // 10-early.conf's short-name-mode sits inside its [[registry]] table in TOML, so it is no top-level key
    expect(c.shortNameMode).toBe("permissive");
    expect(c.aliases).toEqual({ x: "a.io/x", y: "c.io/y" });
  });

  it("should let a later drop-in set short-name-mode, and refuse a v1 drop-in", async () => {
    const root = await mkdtemp(join(dir, "mode-"));
    await writeFile(join(root, "a.conf"), 'short-name-mode = "enforcing"\n');
    const c = await loadRegistriesConf({ path: join(root, "none.conf"), dropInDir: root, env: {} }).catch((e: unknown) => e);
    // an explicitly chosen main file must exist, as in podman
    expect(c).toMatchObject({ code: "REGISTRY_CONFIG_INVALID", context: { file: join(root, "none.conf") } });
    await writeFile(join(root, "main"), 'short-name-mode = "permissive"\n');
    expect((await loadRegistriesConf({ path: join(root, "main"), dropInDir: root, env: {} })).shortNameMode).toBe("enforcing");
    await writeFile(join(root, "b.conf"), '[registries.search]\nregistries = ["docker.io"]\n');
    await expect(loadRegistriesConf({ path: join(root, "main"), dropInDir: root, env: {} })).rejects.toMatchObject({
      code: "REGISTRY_CONFIG_INVALID",
      context: { file: join(root, "b.conf") },
    });
  });

  it("should read a user's own registries.conf instead of the system's, and the user's drop-ins after the system's", async () => {
    const home = await mkdtemp(join(dir, "home-"));
    const userConf = join(home, ".config", "containers");
    await mkdir(join(userConf, "registries.conf.d"), { recursive: true });
    await writeFile(join(userConf, "registries.conf.d", "50-mine.conf"), 'unqualified-search-registries = ["mine.io"]\n');
    // no user main file: the system file and drop-ins (none on a test host's /etc? they may exist), then the user's drop-ins last
    const withoutMain = await loadRegistriesConf({ env: { HOME: home } });
    expect(withoutMain.files.at(-1)).toBe(join(userConf, "registries.conf.d", "50-mine.conf"));
    expect(withoutMain.unqualifiedSearchRegistries).toEqual(["mine.io"]);
    // a user main file replaces the system file and the system drop-ins
    await writeFile(join(userConf, "registries.conf"), '[[registry]]\nlocation = "user.io"\ninsecure = true\n');
    const withMain = await loadRegistriesConf({ env: { HOME: home } });
    expect(withMain.files).toEqual([join(userConf, "registries.conf"), join(userConf, "registries.conf.d", "50-mine.conf")]);
    expect(isInsecureHost(withMain, "user.io")).toBe(true);
  });

  it("should take CONTAINERS_REGISTRIES_CONF as the main file and still read the drop-ins", async () => {
    const root = await mkdtemp(join(dir, "env-"));
    const envFile = join(root, "env.conf");
    await writeFile(envFile, '[registries.search]\nregistries = ["env.io"]\n[registries.insecure]\nregistries = ["env.io"]\n');
    await mkdir(join(root, "d"));
    await writeFile(join(root, "d", "x.conf"), 'credential-helpers = ["secretservice"]\n');
    const c = await loadRegistriesConf({ dropInDir: join(root, "d"), env: { CONTAINERS_REGISTRIES_CONF: envFile } });
    expect(c.files).toEqual([envFile, join(root, "d", "x.conf")]);
    expect(c.unqualifiedSearchRegistries).toEqual(["env.io"]);
    expect(isInsecureHost(c, "env.io")).toBe(true);
    expect(c.credentialHelpers).toEqual(["secretservice"]);
    // `path` wins over the environment
    const other = join(root, "other.conf");
    await writeFile(other, 'unqualified-search-registries = ["other.io"]\n');
    expect((await loadRegistriesConf({ path: other, dropInDir: join(root, "none"), env: { CONTAINERS_REGISTRIES_CONF: envFile } })).unqualifiedSearchRegistries).toEqual(["other.io"]);
  });

  it("should treat a missing drop-in dir as empty and name the file on a bad drop-in", async () => {
    const root = await mkdtemp(join(dir, "bad-"));
    const main = join(root, "registries.conf");
    await writeFile(main, '[[registry]]\nlocation = "a.io"\n');
    const c = await loadRegistriesConf({ path: main, dropInDir: join(root, "missing"), env: {} });
    expect(c.registries.map((r) => r.prefix)).toEqual(["a.io"]);
    await mkdir(join(root, "d"));
    await writeFile(join(root, "d", "broken.conf"), "[[registry]\n");
    await expect(loadRegistriesConf({ path: main, dropInDir: join(root, "d"), env: {} })).rejects.toMatchObject({
      code: "REGISTRY_CONFIG_INVALID",
      context: { file: join(root, "d", "broken.conf") },
    });
  });
});
