import { describe, expect, it } from "vitest";
import type { LoadPredictor } from "@lazypull/image";
import { LoadFollowers } from "./load-followers.js";

const predictor = (name: string, heard: string[]) => ({ opened: async (p: string) => void heard.push(`${name}:${p}`) }) as unknown as LoadPredictor;

describe("LoadFollowers", () => {
  it("routes a layer's first reads to the image served last that has it, and forgets a removed one", () => {
    const heard: string[] = [];
    const f = new LoadFollowers();
    const stopA = f.add(["base", "a"], predictor("A", heard));
    const stopB = f.add(["base", "b"], predictor("B", heard));
    f.opened("base", "usr/bin/python3");
    f.opened("a", "app");
    f.opened("other", "x");
    stopB();
    f.opened("base", "bin/sh");
    stopA();
    f.opened("base", "bin/ls");
    expect(heard).toEqual(["B:usr/bin/python3", "A:app", "A:bin/sh"]);
  });
});
