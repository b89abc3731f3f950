// typescript-eslint with type information (`pnpm lint`, part of .ci/run). Chosen over Biome because the
// rules that need types — floating and misused promises, awaiting non-promises, unsafe `any` flow,
// throwing non-errors — are the ones that catch real bugs in a FUSE server made of callbacks and
// promises; Biome has no type-aware rules of that kind.
import js from "@eslint/js";
import globals from "globals";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["**/dist/**", "**/node_modules/**", "**/*.d.ts", "bench/results/**", "**/.turbo/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      globals: globals.node,
      parserOptions: {
        projectService: { allowDefaultProject: ["scripts/*.ts", "eslint.config.js"] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      // an async method that implements an async contract without awaiting anything is fine
      "@typescript-eslint/require-await": "off",
      // fuse-fs types an untyped native addon with an ambient module declaration, which only a reference brings in
      "@typescript-eslint/triple-slash-reference": ["error", { path: "always" }],
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", destructuredArrayIgnorePattern: "^_", ignoreRestSiblings: true }],
      // an image reference prints itself (toString is its canonical form)
      "@typescript-eslint/restrict-template-expressions": [
        "error",
        { allowNumber: true, allowBoolean: true, allowNullish: true, allow: [{ from: "file", name: "Reference" }] },
      ],
    },
  },
  {
    // tests read JSON answers and hand fakes around: `any` flowing into expect() is the point there
    files: ["**/*.test.ts", "**/test/**", "e2e/**", "**/bench/**", "bench/**"],
    rules: {
      "@typescript-eslint/no-unsafe-argument": "off",
      "@typescript-eslint/no-unsafe-assignment": "off",
      "@typescript-eslint/no-unsafe-member-access": "off",
      "@typescript-eslint/no-unsafe-call": "off",
      "@typescript-eslint/no-unsafe-return": "off",
      "@typescript-eslint/unbound-method": "off",
    },
  },
  {
    files: ["**/*.js", "**/*.mjs"],
    ...tseslint.configs.disableTypeChecked,
  },
);
