// The operations pages: locks (admin release), agents and roles (live status, role config preview and
// apply), plugins (refusals with their reasons) and retention (the plan by lane, apply for admin), each
// against a real serve with real runs.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import AxeBuilder from "@axe-core/playwright";
import type { Page } from "@playwright/test";
import { test, expect, login, shoot, contract, plugins, startServer, type Server } from "./fixtures";

// The queue item's run id once the scheduler has started it.
async function runOf(server: Server, itemId: string): Promise<string> {
  let runId = "";
  await expect
    .poll(async () => {
      runId = (await server.call("GET", `/api/queue/${itemId}`)).json?.run_id ?? "";
      return runId;
    })
    .not.toBe("");
  return runId;
}

// axe finds no serious or critical violation on the page as it is now.
async function accessible(page: Page) {
  const found = await new AxeBuilder({ page }).analyze();
  const bad = found.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  expect(bad.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`)).toEqual([]);
}

// The row of the locks table for the lock a run holds.
const lockRow = (page: Page, runId: string) =>
  page.getByRole("row").filter({ has: page.getByTestId("lock-path") }).filter({ hasText: runId });

test("an admin releases a held lock from the page; an operator sees no release and a forged one is refused", async ({
  page,
  browser,
  server,
}) => {
  // A run that holds src/ for a while, and a second one that waits for it.
  const holder = await server.submit(contract("hold-src", ["sleep 30"], { allowed_paths: ["src/"] }));
  const holderRun = await runOf(server, holder.item_id);
  const waiter = await server.submit(contract("wait-src", ["true"], { allowed_paths: ["src/"] }));
  const lockOf = async () =>
    ((await server.call("GET", "/api/locks")).json.locks as any[]).find((l) => l.item_id === holder.item_id);
  const lock = await lockOf();
  expect(lock?.path).toBe("src/");
  expect((await server.call("GET", `/api/queue/${waiter.item_id}`)).json.waiting_on).toBe(`lock src/ held by ${holderRun}`);
  expect(lock.run_id).toBe(holderRun);

  // An operator sees the lock and who holds it, but no release button.
  const opContext = await browser.newContext();
  const op = await opContext.newPage();
  await login(op, server, "operator");
  await op.goto(server.url + "/locks");
  await expect(lockRow(op, holderRun)).toContainText("src/");
  await expect(op.getByText("Only an admin may release a lock")).toBeVisible();
  await expect(op.getByRole("button", { name: /^Release/ })).toHaveCount(0);
  // A release forged from the operator's own session (cookie and CSRF token) is refused, and the lock stays.
  const session = await (await op.request.get(server.url + "/api/session")).json();
  const forged = await op.request.post(server.url + "/api/locks/release", {
    headers: { "X-CSRF-Token": session.csrf_token },
    data: { lock: lock.lock_id, reason: "forged by an operator" },
  });
  expect(forged.status()).toBe(403);
  expect((await lockOf())?.lock_id).toBe(lock.lock_id);
  await opContext.close();

  // The admin sees the holder, the expiry and the waiting item, and releases the lock with a reason.
  await login(page, server, "admin");
  await page.goto(server.url + "/locks");
  const row = lockRow(page, holderRun);
  await expect(row).toContainText("src/");
  await expect(row).toContainText(holder.item_id);
  await expect(row.getByText(/^in \d+ min$/)).toBeVisible();
  await expect(row).toContainText("1: waiting");
  await expect(page.getByRole("row", { name: new RegExp(waiter.item_id) })).toContainText(`lock src/ held by ${holderRun}`);
  await shoot(page, "locks");
  await accessible(page);
  await row.getByRole("button", { name: "Release src/" }).click();
  const dialog = page.getByRole("dialog");
  await dialog.getByLabel("Reason").fill("the holder is stuck");
  await dialog.getByRole("button", { name: "Yes, release src/" }).click();
  await expect(page.getByTestId("released")).toContainText("PATH_LOCK_RELEASED");
  expect(await lockOf()).toBeUndefined();
  // The release went to the holder's lock only (the waiter may take src/ now: a new lock of its own).
  const locks = (await server.call("GET", "/api/locks")).json.locks as any[];
  expect(locks.map((l) => l.lock_id)).not.toContain(lock.lock_id);

  await server.call("POST", `/api/runs/${holder.item_id}/cancel`, "operator");
});

test("a role's config is edited, previewed as a diff and applied by an admin; the live runs show role, stage and locks", async ({
  page,
  server,
}) => {
  // A live run of the TESTING role, holding docs/.
  const item = await server.submit(
    contract("agents-live", ["sleep 30"], {
      allowed_paths: ["docs/"],
      assigned_agent: { role: "TESTING", agent_id: "tester-1" },
    }),
  );
  const runId = await runOf(server, item.item_id);
  const before = (await server.call("GET", "/api/agents/roles/TESTING/config")).json;
  expect(before.allowed_runners).toEqual(["tool", "codex", "claude", "browser"]);

  await login(page, server, "admin");
  await page.goto(server.url + "/agents");
  const live = page.getByRole("row", { name: new RegExp(runId) });
  await expect(live).toContainText("TESTING");
  await expect(live).toContainText("tester-1 · tool");
  await expect(live).toContainText("runner"); // the stage, moved on by the live stream
  await expect(live).toContainText("docs/"); // its held lock
  await expect(live).toContainText(runId); // the worktree is named for the run

  // Edit TESTING: fewer runners.
  await page.getByRole("link", { name: "TESTING" }).click();
  await expect(page).toHaveURL(/\/agents\?role=TESTING$/);
  const editor = page.getByLabel("The role's entry (JSON)");
  await expect(editor).toHaveValue(/"claude"/);
  const proposed = { ...before.config, allowed_runners: ["tool", "codex"] };
  await editor.fill(JSON.stringify(proposed, null, 2));
  await page.getByRole("button", { name: "Preview", exact: true }).click();
  const diff = page.getByTestId("config-diff").first();
  await expect(diff.locator(".del")).toHaveText([/"codex",$/, /"claude",$/, /"browser"$/]);
  await expect(diff.locator(".add")).toHaveText([/"codex"$/]);
  await expect(page.getByTestId("config-outcome").first()).toContainText("previewed");
  // A preview writes nothing.
  expect((await server.call("GET", "/api/agents/roles/TESTING/config")).json.allowed_runners).toEqual(before.allowed_runners);

  await page.getByRole("button", { name: "Apply to TESTING" }).click();
  const dialog = page.getByRole("dialog");
  await dialog.getByLabel("Reason").fill("testers use tool and codex only");
  await dialog.getByRole("button", { name: "Yes, apply to testing" }).click();
  await expect(page.getByRole("heading", { name: "Applied" })).toBeVisible();
  await expect(page.getByTestId("config-outcome").last()).toContainText("applied");
  await expect(page.getByTestId("config-outcome").last()).toContainText("ROLE_CONFIG_APPLIED");
  const after = (await server.call("GET", "/api/agents/roles/TESTING/config")).json;
  expect(after.allowed_runners).toEqual(["tool", "codex"]);
  expect(after.config.allowed_runners).toEqual(["tool", "codex"]);
  expect(after.role_config.sha256).not.toBe(before.role_config.sha256);
  // The editor reloads what is on disk now.
  await expect(editor).toHaveValue(/"codex"\n/);
  await expect(editor).not.toHaveValue(/claude/);
  await shoot(page, "agents");
  await accessible(page);

  await server.call("POST", `/api/runs/${item.item_id}/cancel`, "operator");
});

test("the plugins page shows each refused library with the reason, each probe's answer, and the loaded plugins with kind, version and ABI", async ({
  page,
}) => {
  // A plugin folder with the build's plugins and a file that is no shared library. Outside the installed
  // folder a plugin runs isolated, which retention lanes cannot yet: theirs would be refused too, so it is
  // left out.
  const dir = mkdtempSync(join(tmpdir(), "cp-ui-plugins-"));
  for (const f of readdirSync(plugins))
    if (f.endsWith(".so") && f !== "retention_lanes.so") copyFileSync(join(plugins, f), join(dir, f));
  writeFileSync(join(dir, "zz_not_a_plugin.so"), "this is not a shared library\n");
  const s = await startServer({ plugins: dir });
  try {
    const api = (await s.call("GET", "/api/plugins", "viewer")).json;
    expect(api.refused.map((r: any) => r.library)).toEqual(["zz_not_a_plugin.so"]);
    await login(page, s, "viewer");
    await page.goto(s.url + "/plugins");
    const refused = page.getByRole("row", { name: /zz_not_a_plugin\.so/ });
    await expect(refused).toContainText("refused");
    await expect(refused.getByTestId("refusal-reason")).toHaveText(api.refused[0].reason);
    await expect(refused).toContainText("not a loadable shared library");
    // The others still load, each with its kind, version and ABI.
    const tool = api.plugins.find((p: any) => p.id === "tool" && p.kind === "runner");
    const row = page.getByRole("row", { name: /runner_tool\.so/ });
    await expect(row).toContainText("runner");
    await expect(row).toContainText(tool.version);
    await expect(row).toContainText(tool.abi);
    await expect(page.getByRole("row", { name: /gate_diff_scope\.so/ })).toContainText("gate");
    // Each probe with its answer (kept by serve for its TTL, so the page shows what this call got).
    const probes = (await s.call("GET", "/api/probes", "viewer")).json;
    expect(probes.count).toBeGreaterThan(0);
    const probeTable = page.getByRole("table", { name: /probe\(s\)/ });
    await expect(probeTable).toContainText(`${probes.count} probe(s)`);
    for (const p of probes.probes) {
      const r = probeTable.getByRole("row", { name: new RegExp(`^${p.id}\\b`) });
      await expect(r).toContainText(p.status);
      if (p.message) await expect(r).toContainText(p.message);
    }
    await shoot(page, "plugins");
    await accessible(page);
  } finally {
    await s.stop();
    rmSync(s.root, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the retention plan is shown by lane; only an admin may apply it, which removes what the plan listed", async ({
  page,
  browser,
}) => {
  // Lanes inside the root only (the shipped policy also governs a cache under $HOME), a stale cache entry
  // (5 days old, TTL 1 day) and a fresh one.
  let cache = "";
  const s = await startServer({
    prepare: (root) => {
      writeFileSync(
        join(root, "policies/retention_policy.json"),
        JSON.stringify({
          policy: "retention_policy",
          version: 1,
          lanes: { runs: { ttl_days: 1 }, cache: { ttl_days: 1 }, logs: { ttl_days: 14 } },
          protected_patterns: [],
        }),
      );
      cache = join(root, ".runtime-cache/cache/build");
      for (const [name, text] of [["stale", "x".repeat(100)], ["fresh", "y"]]) {
        mkdirSync(join(cache, name), { recursive: true });
        writeFileSync(join(cache, name, "f"), text);
      }
      const old = new Date(Date.now() - 5 * 86_400_000);
      utimesSync(join(cache, "stale/f"), old, old);
      utimesSync(join(cache, "stale"), old, old);
    },
  });
  try {
    const plan = (await s.call("GET", "/api/retention/plan", "viewer")).json;
    expect(plan.lanes.cache.candidates.map((c: any) => c.path)).toEqual(["build/stale"]);

    // An operator sees the plan by lane but no apply, and an apply forged from its session is refused.
    const opContext = await browser.newContext();
    const op = await opContext.newPage();
    await login(op, s, "operator");
    await op.goto(s.url + "/retention");
    const cacheLane = op.getByTestId("lane-cache");
    await expect(cacheLane.getByRole("row", { name: /build\/stale/ })).toContainText(plan.lanes.cache.candidates[0].reason);
    await expect(op.getByTestId("lane-runs")).toContainText("nothing to delete");
    await expect(op.getByText("Applying it needs an admin")).toBeVisible();
    await expect(op.getByRole("button", { name: "Apply the plan" })).toHaveCount(0);
    const session = await (await op.request.get(s.url + "/api/session")).json();
    const forged = await op.request.post(s.url + "/api/retention/apply", {
      headers: { "X-CSRF-Token": session.csrf_token },
      data: { paths: { cache: ["build/stale"] }, reason: "forged by an operator" },
    });
    expect(forged.status()).toBe(403);
    expect(existsSync(join(cache, "stale/f"))).toBe(true);
    await opContext.close();

    // The admin applies it from the page: the stale entry goes, the fresh one stays.
    await login(page, s, "admin");
    await page.goto(s.url + "/retention");
    await expect(page.getByTestId("retention-candidates")).toHaveText("1");
    await expect(page.getByRole("row", { name: /^cache/ })).toContainText("1");
    await expect(page.getByTestId("lane-logs")).toContainText("held");
    await shoot(page, "retention");
    await accessible(page);
    await page.getByRole("button", { name: "Apply the plan" }).click();
    const dialog = page.getByRole("dialog");
    await dialog.getByLabel("Reason").fill("stale build cache");
    await dialog.getByRole("button", { name: "Yes, apply the plan" }).click();
    const applied = page.getByTestId("retention-applied");
    await expect(applied).toContainText("1 removed");
    await expect(applied.getByRole("list", { name: "Removed" })).toContainText("cache: build/stale");
    expect(existsSync(join(cache, "stale"))).toBe(false);
    expect(existsSync(join(cache, "fresh/f"))).toBe(true);
    // The plan, made again, has nothing left to delete.
    await expect(page.getByTestId("retention-candidates")).toHaveText("0");
    await expect(page.getByRole("button", { name: "Apply the plan" })).toHaveCount(0);
  } finally {
    await s.stop();
    rmSync(s.root, { recursive: true, force: true });
  }
});
