import { defineConfig } from "vitest/config";

// The suite's own specs (proxy, breakdown); the root config does not list bench/.
export default defineConfig({ test: { include: ["src/**/*.test.ts"], testTimeout: 30_000 } });
