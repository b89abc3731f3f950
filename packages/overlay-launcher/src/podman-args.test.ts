import type { ImageConfig } from "@lazypull/registry-client";
import { describe, expect, it } from "vitest";
import { resolveHostConfig } from "./config.js";
import { buildPodmanArgs, containerArgv, mergeEnv, type RunOptions } from "./podman-args.js";
import type { ClampedUlimit } from "./ulimits.js";

const podman = resolveHostConfig({}, { env: {} }).podman;
const ulimits: ClampedUlimit[] = [
  { name: "nofile", soft: 4096, hard: 4096 },
  { name: "nproc", soft: 4096, hard: 4096 },
];
const image = (config: ImageConfig["config"]): ImageConfig => ({ config, rootfs: { type: "layers", diff_ids: [] } });
const base = ["--runtime", "runc", "run"];
const limits = ["--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096"];
const args = (img: ImageConfig, run: RunOptions, hostEnv: NodeJS.ProcessEnv = {}): string[] =>
  buildPodmanArgs({ image: img, run, podman, ulimits, rootfs: "/run/lazypull/containers/x/merged", hostEnv });

describe("buildPodmanArgs", () => {
  it("should apply the image's Entrypoint, Cmd, Env, WorkingDir and User", () => {
    const img = image({ Entrypoint: ["/docker-entrypoint.sh"], Cmd: ["nginx", "-g", "daemon off;"], Env: ["PATH=/usr/bin:/bin", "NGINX_VERSION=1.25"], WorkingDir: "/srv", User: "101:101" });
    expect(args(img, {})).toEqual([
      ...base, ...limits, "--network", "host",
      "--env", "PATH=/usr/bin:/bin", "--env", "NGINX_VERSION=1.25",
      "--workdir", "/srv", "--user", "101:101",
      "--rootfs", "/run/lazypull/containers/x/merged",
      "/docker-entrypoint.sh", "nginx", "-g", "daemon off;",
    ]);
  });

  it("should put every run option in place, with global and extra run flags from the config", () => {
    const p = { ...podman, globalArgs: ["--root", "/var/lib/x"], runArgs: ["--cgroups=disabled"], network: null };
    const img = image({ Cmd: ["bash"], WorkingDir: "/srv", User: "nobody" });
    const run: RunOptions = {
      rm: true, name: "web", interactive: true, tty: true, env: ["A=1"], volumes: ["/data:/data:ro", "/tmp:/tmp"],
      workdir: "/work", user: "0:0", network: "none", args: ["ls", "-l"],
    };
    expect(buildPodmanArgs({ image: img, run, podman: p, ulimits, rootfs: "/m", hostEnv: {} })).toEqual([
      "--root", "/var/lib/x", "--runtime", "runc", "run", "--rm", "--name", "web", "--interactive", "--tty",
      ...limits, "--network", "none", "--env", "A=1", "--workdir", "/work", "--user", "0:0",
      "--volume", "/data:/data:ro", "--volume", "/tmp:/tmp", "--cgroups=disabled", "--rootfs", "/m", "ls", "-l",
    ]);
  });

  it("should leave the network to podman when neither the config nor the run names one", () => {
    const p = { ...podman, network: null };
    expect(buildPodmanArgs({ image: image({ Cmd: ["true"] }), run: {}, podman: p, ulimits: [], rootfs: "/m" })).toEqual([
      ...base, "--rootfs", "/m", "true",
    ]);
  });

  it("should reject a relative rootfs and a malformed volume naming the option", () => {
    expect(() => buildPodmanArgs({ image: image({ Cmd: ["true"] }), run: {}, podman, ulimits, rootfs: "m" })).toThrow(
      expect.objectContaining({ code: "LAUNCH_BAD_OPTION", context: { option: "rootfs", value: "m" } }),
    );
    for (const v of ["/data", "/data:rel", ":/x", "/a:/b:ro:extra"]) {
      expect(() => args(image({ Cmd: ["true"] }), { volumes: [v] })).toThrow(expect.objectContaining({ code: "LAUNCH_BAD_OPTION", context: { option: "volume", value: v } }));
    }
  });
});

describe("containerArgv", () => {
  const img = image({ Entrypoint: ["/init", "--"], Cmd: ["serve", "--port=80"] });
  it("should use Entrypoint + Cmd when no args are given", () => {
    expect(containerArgv(img, {})).toEqual(["/init", "--", "serve", "--port=80"]);
  });
  it("should replace Cmd (and keep Entrypoint) with CMD ARGS", () => {
    expect(containerArgv(img, { args: ["sh"] })).toEqual(["/init", "--", "sh"]);
  });
  it("should treat empty args as no args", () => {
    expect(containerArgv(img, { args: [] })).toEqual(["/init", "--", "serve", "--port=80"]);
  });
  it("should let --entrypoint replace Entrypoint and clear Cmd", () => {
    expect(containerArgv(img, { entrypoint: "/bin/sh" })).toEqual(["/bin/sh"]);
    expect(containerArgv(img, { entrypoint: "/bin/sh", args: ["-c", "echo hi"] })).toEqual(["/bin/sh", "-c", "echo hi"]);
  });
  it("should split a JSON-array --entrypoint and keep a plain one whole", () => {
    expect(containerArgv(img, { entrypoint: '["/bin/sh","-c"]', args: ["id"] })).toEqual(["/bin/sh", "-c", "id"]);
    expect(containerArgv(img, { entrypoint: "/bin/my tool" })).toEqual(["/bin/my tool"]);
  });
  it("should let an empty --entrypoint clear both, running only the args", () => {
    expect(containerArgv(img, { entrypoint: "", args: ["date"] })).toEqual(["date"]);
  });
  it("should fail with LAUNCH_NO_COMMAND when nothing is left to run", () => {
    expect(() => containerArgv(image({}), {})).toThrow(expect.objectContaining({ code: "LAUNCH_NO_COMMAND" }));
    expect(() => containerArgv(img, { entrypoint: "" })).toThrow(expect.objectContaining({ code: "LAUNCH_NO_COMMAND" }));
    expect(() => containerArgv({ rootfs: { type: "layers", diff_ids: [] } }, {})).toThrow(expect.objectContaining({ code: "LAUNCH_NO_COMMAND" }));
  });
  it("should reject a bracketed --entrypoint that is not a string array", () => {
    expect(() => containerArgv(img, { entrypoint: "[1,2]" })).toThrow(expect.objectContaining({ code: "LAUNCH_BAD_OPTION" }));
    expect(() => containerArgv(img, { entrypoint: "[oops" })).toThrow(expect.objectContaining({ code: "LAUNCH_BAD_OPTION" }));
  });
});

describe("mergeEnv", () => {
  const imageEnv = ["PATH=/usr/bin", "LANG=C.UTF-8", "EMPTY=", "BROKEN", "X=a=b"];
  it("should keep the image's order and values (an '=' inside a value too), dropping entries without '='", () => {
    expect(mergeEnv(imageEnv, [], {})).toEqual(["PATH=/usr/bin", "LANG=C.UTF-8", "EMPTY=", "X=a=b"]);
  });
  it("should override in place and append new variables in the order given", () => {
    expect(mergeEnv(imageEnv, ["LANG=de_DE.UTF-8", "NEW=1", "PATH=/bin", "NEW=2"], {})).toEqual([
      "PATH=/bin", "LANG=de_DE.UTF-8", "EMPTY=", "X=a=b", "NEW=2",
    ]);
  });
  it("should take a bare K from the host, and drop it when the host has no K", () => {
    expect(mergeEnv(["HOME=/root"], ["HOME", "TERM", "MISSING"], { HOME: "/home/me", TERM: "xterm" })).toEqual(["HOME=/home/me", "TERM=xterm"]);
  });
  it("should allow an empty value and reject an empty or spaced name", () => {
    expect(mergeEnv(undefined, ["A="], {})).toEqual(["A="]);
    for (const bad of ["=x", "", "A B=1"]) {
      expect(() => mergeEnv(undefined, [bad], {})).toThrow(expect.objectContaining({ code: "LAUNCH_BAD_OPTION", context: { option: "env", value: bad } }));
    }
  });
});
