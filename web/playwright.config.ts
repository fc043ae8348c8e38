import { defineConfig } from "@playwright/test";
import { execSync } from "node:child_process";

// Debian's Chromium, never a downloaded browser (`playwright install` is not
// used anywhere): the project's bootstrap installs it with apt.
const chromium = execSync("command -v chromium", { shell: "/bin/bash" }).toString().trim();

export default defineConfig({
  testDir: "tests",
  testMatch: /.*\.spec\.ts/,
  globalSetup: "./tests/stack.ts",
  timeout: 180_000,
  expect: { timeout: 15_000 },
  fullyParallel: false,
  workers: 1,
  reporter: [["list"]],
  outputDir: "../target/playwright",
  use: {
    browserName: "chromium",
    launchOptions: { executablePath: chromium, args: ["--no-sandbox"] },
    trace: "off",
  },
});
