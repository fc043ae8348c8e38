import { defineConfig } from "@playwright/test";
import base from "./playwright.config";

// `make bench`: each benchmark starts its own stack (tests/bench/).
export default defineConfig({
  ...base,
  testDir: "tests/bench",
  testMatch: /.*\.bench\.ts/,
  globalSetup: undefined,
  timeout: 900_000,
});
