import { defineConfig } from "vitest/config";

// One command runs everything (the README's test command): fast unit specs beside the sources,
// integration tests that start real processes (registry, FUSE mounts) in forks, and the e2e suite.
const resolve = { conditions: ["@lazypull/source"] };
const ssr = { resolve: { conditions: ["@lazypull/source"], externalConditions: ["@lazypull/source"] } };

export default defineConfig({
  test: {
    // In CI a JSON report too, from which .ci/run prints a plain "N passed, N failed" closing line.
    reporters: process.env.CI ? ["default", ["json", { outputFile: ".cache/vitest-results.json" }]] : ["default"],
    projects: [
      {
        resolve,
        ssr,
        test: {
          name: "unit",
          include: ["packages/*/src/**/*.test.ts", "apps/*/src/**/*.test.ts", "bench/src/**/*.test.ts", "deploy/**/*.test.ts"],
          testTimeout: 30_000,
        },
      },
      {
        resolve,
        ssr,
        test: {
          name: "integration",
          include: ["packages/*/test/**/*.test.ts", "apps/*/test/**/*.test.ts"],
          pool: "forks",
          testTimeout: 120_000,
          hookTimeout: 600_000,
        },
      },
      {
        resolve,
        ssr,
        test: {
          name: "e2e",
          include: ["e2e/**/*.test.ts"],
          // the registry and the converted Debian image, shared by every e2e file
          globalSetup: ["e2e/global-setup.ts"],
          pool: "forks",
          poolOptions: { forks: { singleFork: true } },
          testTimeout: 300_000,
          hookTimeout: 900_000,
        },
      },
    ],
  },
});
