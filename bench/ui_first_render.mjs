// Time to first render of the dashboard's runs page: for each serve URL given, 5 loads of /runs in a fresh
// browser context (nothing cached), each measured from navigation start to the moment the first page of
// runs is on screen (the page's performance mark "cp:runs-rendered"); prints the median per URL as JSON.
// Usage: node bench/ui_first_render.mjs TOKEN URL...   (run from the repository root; uses web/node_modules)
import { createRequire } from "node:module";
const require = createRequire(new URL("../web/package.json", import.meta.url));
const { chromium } = require("@playwright/test");

const [token, ...urls] = process.argv.slice(2);
const browser = await chromium.launch({ executablePath: process.env.CP_CHROMIUM ?? "/usr/bin/chromium", args: ["--no-sandbox"] });
const out = {};
for (const url of urls) {
  const times = [];
  for (let i = 0; i < 5; i++) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const made = await context.request.post(url + "/api/session", { headers: { Authorization: "Bearer " + token }, data: {} });
    if (made.status() !== 201) throw new Error("POST /api/session: " + made.status());
    const page = await context.newPage();
    await page.goto(url + "/runs");
    await page.waitForFunction(() => performance.getEntriesByName("cp:runs-rendered").length > 0, null, { timeout: 60_000 });
    times.push(await page.evaluate(() => performance.getEntriesByName("cp:runs-rendered")[0].startTime));
    await context.close();
  }
  times.sort((a, b) => a - b);
  out[url] = { median_ms: times[2], all_ms: times.map((t) => Math.round(t)) };
}
await browser.close();
console.log(JSON.stringify(out));
