import { describe, expect, it } from "vitest";
import { checkImageConfig } from "./image-config.js";

const D = `sha256:${"a".repeat(64)}`;
const ok = { architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [D] }, config: { Env: ["PATH=/bin"], Cmd: ["sh"], Entrypoint: null, User: "1000", Labels: { a: "b" } } };
const check = (v: unknown, layers = 1) => () => checkImageConfig(v, layers, "config X", { digest: D });

describe("checkImageConfig", () => {
  it("should accept a config of the spec's shape, extra fields included", () => {
    expect(check({ ...ok, somethingNew: 1, config: { ...ok.config, Healthcheck: {} } })()).toMatchObject({ os: "linux" });
    expect(check({ rootfs: { type: "layers", diff_ids: [] } }, 0)()).toBeTruthy();
  });

  it.each([
    ["an array", [], "the config must be a JSON object, but it is an array"],
    ["a string", "x", "the config must be a JSON object, but it is a string"],
    ["no rootfs", { config: {} }, "rootfs must be an object, but it is missing"],
    ["diff_ids not digests", { rootfs: { type: "layers", diff_ids: ["x"] } }, "rootfs.diff_ids must be an array of digests"],
    ["Env a string", { ...ok, config: { Env: "PATH=/bin" } }, "config.Env must be an array of strings or null, but it is a string"],
    ["Entrypoint a number", { ...ok, config: { Entrypoint: 7 } }, "config.Entrypoint must be an array of strings or null, but it is a number"],
    ["Cmd with a number", { ...ok, config: { Cmd: ["sh", 1] } }, "config.Cmd must be an array of strings or null, but it is an array"],
    ["User a number", { ...ok, config: { User: 0 } }, "config.User must be a string, but it is a number"],
    ["Env without =", { ...ok, config: { Env: ["PATH"] } }, "config.Env entries must be NAME=value"],
    ["Labels of numbers", { ...ok, config: { Labels: { a: 1 } } }, "config.Labels must be an object of strings"],
    ["config an array", { ...ok, config: [] }, "config must be an object, but it is an array"],
  ])("should refuse %s, naming the field", (_what, value, message) => {
    expect(check(value)).toThrow(expect.objectContaining({ code: "IMAGE_CONFIG_INVALID", message: expect.stringContaining(message) }));
  });

  it("should refuse diff_ids that do not match the manifest's layers", () => {
    expect(check(ok, 2)).toThrow(expect.objectContaining({ code: "IMAGE_CONFIG_INVALID", message: "config X: rootfs.diff_ids has 1 entries for the manifest's 2 layers" }));
  });
});
