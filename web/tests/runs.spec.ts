// The runs list over a generated root of 10,000 runs: cursor paging both ways and every filter, each
// checked against what the API says; and a real run showing up on the open page without a reload.
import { spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { test as base, expect, login, shoot, source, startServer, contract, type Server } from "./fixtures";

const N = 10_000;
const test = base.extend<{}, { big: Server }>({
  big: [
    async ({}, use) => {
      const s = await startServer({
        prepare: (root) => {
          const r = spawnSync("python3", [join(source, "bench/generate_runs.py"), root, String(N)], { encoding: "utf8" });
          if (r.status !== 0) throw new Error(r.stderr);
        },
        args: ["--no-scheduler"],
      });
      await use(s);
      await s.stop();
      rmSync(s.root, { recursive: true, force: true });
    },
    { scope: "worker" },
  ],
});

const rows = (page: import("@playwright/test").Page) => page.locator("main table tbody tr");
const firstRunId = async (page: import("@playwright/test").Page) => (await rows(page).first().locator("td").first().innerText()).trim();

test("pages through 10,000 runs by cursor, forwards and back", async ({ page, big }) => {
  await login(page, big, "viewer");
  await page.goto(big.url + "/runs");
  await expect(rows(page)).toHaveCount(50);
  // Newest first: the generator's last run ends latest.
  const api = await big.call("GET", "/api/runs?limit=50", "viewer");
  expect(await firstRunId(page)).toBe(api.json.runs[0].run_id);
  await shoot(page, "runs");
  const seen = new Set<string>();
  for (let i = 0; i < 4; i++) {
    const first = await firstRunId(page);
    expect(seen.has(first)).toBe(false);
    seen.add(first);
    await page.getByRole("button", { name: "Next page" }).click();
    await expect(page).toHaveURL(/cursor=/);
    await expect.poll(() => firstRunId(page)).not.toBe(first);
    await expect(rows(page)).toHaveCount(50);
  }
  // The fifth page is the API's fifth page.
  let cursor: string | null = null;
  let fifth: any;
  for (let i = 0; i < 5; i++) {
    fifth = await big.call("GET", "/api/runs?limit=50" + (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""), "viewer");
    cursor = fifth.json.next_cursor;
  }
  expect(await firstRunId(page)).toBe(fifth.json.runs[0].run_id);
  await page.getByRole("button", { name: "Previous page" }).click();
  await expect.poll(() => firstRunId(page)).not.toBe(fifth.json.runs[0].run_id);
  // A paged URL is a link one can share: opening it shows the same page.
  const url = page.url();
  const shown = await firstRunId(page);
  await page.goto(url);
  await expect.poll(() => firstRunId(page)).toBe(shown);
});

test("each filter shows exactly the runs the API gives for it", async ({ page, big }) => {
  await login(page, big, "viewer");
  const cases: [string, string, string][] = [
    ["status", "awaiting_approval", "status=awaiting_approval"],
    ["verdict", "denied", "verdict=denied"],
    ["pack", "high", "pack=high"],
    ["runner", "tool", "runner=tool"],
    ["workflow", "wf-03", "workflow=wf-03"],
    ["q", "bench-0000123", "q=bench-0000123"],
  ];
  for (const [name, value, query] of cases) {
    await page.goto(big.url + "/runs");
    await expect(rows(page)).toHaveCount(50);
    const form = page.getByRole("search", { name: "Filter runs" });
    if (name === "status" || name === "verdict") await form.locator(`select[name=${name}]`).selectOption(value);
    else await form.locator(`input[name=${name}]`).fill(value);
    await page.getByRole("button", { name: "Filter" }).click();
    await expect(page).toHaveURL(new RegExp(query.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")));
    const api = await big.call("GET", "/api/runs?limit=50&" + query, "viewer");
    expect(api.status, JSON.stringify(api.json)).toBe(200);
    const want = api.json.runs.map((r: any) => r.run_id);
    expect(want.length, query).toBeGreaterThan(0);
    await expect(rows(page)).toHaveCount(want.length);
    const got = await rows(page).evaluateAll((trs) => trs.map((tr) => tr.querySelector("td")!.textContent!.trim()));
    expect(got, query).toEqual(want);
  }
});

base("a run made while the list is open appears without a reload", async ({ page, server }) => {
  await login(page, server, "viewer");
  await page.goto(server.url + "/runs");
  await expect(page.getByText("Live", { exact: true })).toBeVisible();
  const before = await rows(page).count();
  const item = await server.submit(contract("appears-live", ["true"]));
  const run = await server.waitRun(item.item_id, ["sealed"]);
  await expect(page.getByRole("link", { name: run.run_id })).toBeVisible();
  expect(await rows(page).count()).toBeGreaterThanOrEqual(before);
});
