// The Playwright side of bench/browser_bench.sh: one cold process that launches Debian's chromium (no
// browser download), opens URL, waits for the load event (page.goto's default, the browser runner's too),
// takes a full-page PNG screenshot into OUT and closes the browser.
// Usage: node playwright_shot.mjs URL OUT.png [CONSOLE=0|1]
// Prints one JSON line: wall-clock milliseconds (Date.now) at the points the harness reads, and counts.
import { chromium } from 'playwright-core';

const started = Date.now();
const [url, out, listen] = process.argv.slice(2);
if (!url || !out) {
  console.error('usage: node playwright_shot.mjs URL OUT.png [CONSOLE=0|1]');
  process.exit(2);
}
// The browser runner's own chromium flags (plugins/runners/browser/chromium_process.cpp) on top of
// Playwright's defaults, which already hold --headless, --no-sandbox, --hide-scrollbars, --mute-audio and
// most of the rest; Playwright manages the user-data-dir and the DevTools pipe itself.
const args = [
  '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--no-default-browser-check',
  '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-extensions',
  '--disable-default-apps', '--disable-breakpad', '--disable-crash-reporter', '--metrics-recording-only',
  '--password-store=basic', '--use-mock-keychain', '--mute-audio', '--hide-scrollbars', '--window-size=1280,800',
];
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args });
const launched = Date.now();
const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
let consoleLines = 0;
let requests = 0;
if (listen === '1') {
  page.on('console', () => { consoleLines++; });
  page.on('requestfinished', () => { requests++; });
}
const navigating = Date.now();
const response = await page.goto(url, { waitUntil: 'load', timeout: 60000 });
const loaded = Date.now();
await page.screenshot({ path: out, fullPage: true });
const shot = Date.now();
await browser.close();
const closed = Date.now();
console.log(JSON.stringify({
  started, launched, navigating, loaded, shot, closed,
  status: response ? response.status() : 0, console_lines: consoleLines, requests,
}));
