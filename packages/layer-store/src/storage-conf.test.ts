import { describe, expect, it } from "vitest";
import { addLayerStore, BLOCK_BEGIN, BLOCK_END, removeLayerStore } from "./storage-conf.js";

const STORE = "/var/lib/lazypull/store";
const KEY = `additionallayerstores = ["${STORE}:ref"]`;

describe("storage.conf editing", () => {
  it("should create a file with podman's own roots when there is none, and remove it whole", () => {
    const add = addLayerStore(undefined, STORE, { defaults: { driver: "overlay", graphRoot: "/var/lib/containers/storage", runRoot: "/run/containers/storage" } });
    expect(add.text).toBe(
      [BLOCK_BEGIN, "[storage]", 'driver = "overlay"', 'graphroot = "/var/lib/containers/storage"', 'runroot = "/run/containers/storage"', "", "[storage.options]", KEY, BLOCK_END, ""].join("\n"),
    );
    const rm = removeLayerStore(add.text);
    expect(rm.empty).toBe(true);
    expect(rm.changes).toHaveLength(add.changes.length);
  });

  it("should add the key under an existing [storage.options] and take out only its own lines", () => {
    const text = ['[storage]', 'driver = "overlay"', "", "[storage.options]", 'mount_program = ""', "", "[storage.options.overlay]", 'mountopt = "nodev"', ""].join("\n");
    const add = addLayerStore(text, STORE);
    expect(add.text.split("\n").slice(3, 7)).toEqual(["[storage.options]", BLOCK_BEGIN, KEY, BLOCK_END]);
    expect(addLayerStore(add.text, STORE).changes).toEqual([]); // already set up
    const rm = removeLayerStore(add.text);
    expect(rm.text).toBe(text);
    expect(rm.empty).toBe(false);
  });

  it("should append a [storage.options] table when the file has none", () => {
    const add = addLayerStore('[storage]\ndriver = "overlay"', STORE);
    expect(add.text).toBe(['[storage]', 'driver = "overlay"', BLOCK_BEGIN, "[storage.options]", KEY, BLOCK_END, ""].join("\n"));
    expect(removeLayerStore(add.text).text).toBe('[storage]\ndriver = "overlay"\n');
  });

  it("should refuse to rewrite a store list someone else wrote, naming the line", () => {
    const text = ["[storage.options]", 'additionallayerstores = ["/other:ref"]'].join("\n");
    expect(() => addLayerStore(text, STORE, { file: "/etc/containers/storage.conf" })).toThrow(
      expect.objectContaining({ code: "STORAGE_CONF_CONFLICT", message: expect.stringContaining("/etc/containers/storage.conf:2") }),
    );
    // a key in another table is not ours to worry about
    expect(addLayerStore(["[storage.options]", "[storage.options.overlay]", 'additionallayerstores = ["x"]'].join("\n"), STORE).changes).toHaveLength(3);
  });
});
