// The dashboard's browser tests: Debian's chromium, headless, driven by Playwright (no browser download),
// against real `cp-host serve` processes the tests start (tests/fixtures.ts). Screenshots of every page
// land in the build folder (CP_UI_SHOTS, default ../build/ui-screenshots) as CI artifacts.
import { defineConfig } from "@playwright/test";

export default defineConfig({
  testDir: "tests",
  timeout: 120_000,
  expect: { timeout: 20_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  reporter: [["list"]],
  outputDir: process.env.CP_UI_RESULTS ?? "../build/ui-test-results",
  use: {
    browserName: "chromium",
    headless: true,
    viewport: { width: 1280, height: 900 },
    launchOptions: {
      executablePath: process.env.CP_CHROMIUM ?? "/usr/bin/chromium",
      args: ["--no-sandbox", "--disable-dev-shm-usage"],
    },
    trace: "retain-on-failure",
    screenshot: "only-on-failure",
  },
});
