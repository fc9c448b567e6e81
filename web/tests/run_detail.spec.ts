// The run detail page over real runs (tool runner contracts on the sample repository): the event timeline
// growing while a run executes, approve and reject from the page (checked through the API), a viewer who
// sees no write button and whose forged request changes nothing, the diff viewer, replay, verify and the
// comparison of two runs.
import { writeFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import type { Page } from "@playwright/test";
import AxeBuilder from "@axe-core/playwright";
import { test, expect, login, shoot, contract, type Server } from "./fixtures";

const fix = ["sed -i s/Helo/Hello/ src/greeting.sh"];

// A run of the demo change under the "high" pack, which asks a human to approve: awaiting approval.
async function awaitingRun(server: Server, task: string): Promise<string> {
  const c = contract(task, fix);
  c.runtime_options.pack = "high";
  const item = await server.submit(c);
  const run = await server.waitRun(item.item_id, ["awaiting_approval", "sealed"]);
  expect(run.status, JSON.stringify(run)).toBe("awaiting_approval");
  return run.run_id;
}

async function manifest(server: Server, id: string) {
  const r = await server.call("GET", `/api/runs/${id}`);
  expect(r.status).toBe(200);
  return r.json.manifest;
}

// Adds files to the sample repository in one commit (runs start from its HEAD).
function commit(server: Server, files: Record<string, string | Buffer>) {
  for (const [path, content] of Object.entries(files)) writeFileSync(join(server.repo, path), content);
  const git = spawnSync("sh", ["-c", "git add -A && git -c user.name=t -c user.email=t@localhost commit -q -m test-files"], {
    cwd: server.repo,
    encoding: "utf8",
  });
  expect(git.status, git.stderr).toBe(0);
}

// The serious or critical accessibility problems axe finds on the page as it is now.
async function axe(page: Page) {
  const r = await new AxeBuilder({ page }).withTags(["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]).analyze();
  return r.violations.filter((v) => v.impact === "serious" || v.impact === "critical").map((v) => `${v.id}: ${v.help}`);
}

// Clicks an action's button, confirms its dialog (filling its fields) and returns the outcome it shows.
async function act(page: Page, label: string, fields: Record<string, string> = {}) {
  const button = page.getByRole("button", { name: label, exact: true });
  await button.click();
  const dialog = page.getByRole("dialog");
  await expect(dialog).toBeVisible();
  for (const [name, value] of Object.entries(fields)) await dialog.getByLabel(name).fill(value);
  await dialog.getByRole("button", { name: `Yes, ${label.toLowerCase()}` }).click();
  await expect(dialog).toBeHidden();
  return page.locator(".action", { has: button }).getByRole("status");
}

test("the event timeline grows while the run executes, then the run seals", async ({ page, server }) => {
  // A script that holds the run until the test lets it go (a file named `go` in its worktree), so the run is
  // known to be still running when the timeline is checked, whatever the machine's speed.
  commit(server, { "scripts/hold.sh": "while [ ! -e go ]; do sleep 0.1; done; rm -f go\n" });
  const item = await server.submit(contract("timeline", ["sh scripts/hold.sh", "sh scripts/slow.sh", "sh scripts/hold.sh", ...fix]));
  const run = await server.waitRun(item.item_id, ["running"]);
  const id = run.run_id;
  const worktree: string = (await manifest(server, id)).worktree;
  expect(worktree).toBeTruthy();

  await login(page, server, "viewer");
  await page.goto(`${server.url}/runs/${id}`);
  const items = page.getByTestId("timeline").locator("li");
  await expect(items.filter({ hasText: "RUNNER_STARTED" })).toHaveCount(1);
  await expect(page.getByTestId("timeline-state")).toContainText("new events appear as they happen");
  const before = await items.count();

  // The first command ends: its event is appended to the page while the run still runs.
  writeFileSync(join(worktree, "go"), "");
  await expect(items.filter({ hasText: "hold.sh" })).toHaveCount(1);
  expect(await items.count()).toBeGreaterThan(before);
  expect((await manifest(server, id)).status).toBe("running");

  // slow.sh ends too (the second hold keeps the run running): the timeline grows again, with no reload.
  const afterFirst = await items.count();
  await expect(items.filter({ hasText: "slow.sh" })).toHaveCount(1);
  expect(await items.count()).toBeGreaterThan(afterFirst);
  expect((await manifest(server, id)).status).toBe("running");
  await expect(page.getByTestId("verdict")).toContainText("running");

  // Let it finish: the stream ends with the seal, and the page shows the verdict it came to.
  writeFileSync(join(worktree, "go"), "");
  await expect(items.filter({ hasText: "RUN_SEALED" })).toHaveCount(1);
  await expect(page.getByTestId("timeline-state")).toContainText("sealed");
  const sealed = await manifest(server, id);
  expect(sealed.status).toBe("sealed");
  expect(sealed.verdict).toBe("success");
  await expect(page.getByTestId("verdict")).toContainText("success");
  expect(await items.count()).toBe(sealed.events.count);
});

test("approve from the page: the run is sealed success and its proof is shown", async ({ page, server }) => {
  const id = await awaitingRun(server, "approve-me");
  await login(page, server, "operator");
  await page.goto(`${server.url}/runs/${id}`);
  await expect(page.getByTestId("approval-pack")).toContainText("0 of 1 approval(s) given");
  await expect(page.getByTestId("proof")).toHaveCount(0);
  // An operator may decide, but not alone in god mode.
  await expect(page.getByRole("button", { name: "God-mode approve" })).toHaveCount(0);
  expect(await axe(page), "the page of a run awaiting approval").toEqual([]);

  const outcome = await act(page, "Approve", { "Reason (optional)": "the greeting fix is right" });
  await expect(outcome).toContainText("approved");

  const m = await manifest(server, id);
  expect(m.status).toBe("sealed");
  expect(m.verdict).toBe("success");
  expect(m.approval.decision.by).toBe("ui-operator");
  expect(m.approval.decision.reason).toBe("the greeting fix is right");

  // The page read the run again: the verdict, the decision and the proof pack of the success.
  await expect(page.getByTestId("verdict")).toContainText("success");
  const proof = page.getByTestId("proof");
  await expect(proof).toBeVisible();
  await expect(proof).toContainText("src/greeting.sh");
  await expect(proof).toContainText("ui-operator");
  await expect(proof).toContainText("acceptance_tests");
  await expect(page.getByTestId("timeline").locator("li").filter({ hasText: "RUN_SEALED" })).toHaveCount(1);
  await shoot(page, "run-detail");
});

test("reject from the page: the run is sealed denied", async ({ page, server }) => {
  const id = await awaitingRun(server, "reject-me");
  await login(page, server, "operator");
  await page.goto(`${server.url}/runs/${id}`);
  const outcome = await act(page, "Reject", { "Reason (optional)": "not this way" });
  await expect(outcome).toContainText("rejected");

  const m = await manifest(server, id);
  expect(m.status).toBe("sealed");
  expect(m.verdict).toBe("denied");
  expect(m.approval.state).toBe("rejected");
  expect(m.approval.decision.by).toBe("ui-operator");
  await expect(page.getByTestId("verdict")).toContainText("denied");
  await expect(page.getByTestId("incident")).toBeVisible();
  await expect(page.getByTestId("proof")).toHaveCount(0);
});

test("a viewer sees no write button, and a forged approval from its session is refused and changes nothing", async ({ page, server }) => {
  const id = await awaitingRun(server, "viewer-looks");
  await login(page, server, "viewer");
  await page.goto(`${server.url}/runs/${id}`);
  await expect(page.getByTestId("approval-pack")).toBeVisible();
  await expect(page.getByTestId("diff")).toBeVisible();
  for (const label of ["Approve", "Reject", "God-mode approve", "Promote", "Replay", "Roll back", "Cancel run", "Verify"])
    await expect(page.getByRole("button", { name: label, exact: true })).toHaveCount(0);
  await expect(page.getByRole("group", { name: "Actions on this run" })).toHaveCount(0);

  // The same request the Approve button would send, with the session's real CSRF token: the role refuses it.
  const forged = await page.evaluate(async (run) => {
    const s = await (await fetch("/api/session")).json();
    const r = await fetch(`/api/runs/${encodeURIComponent(run)}/approve`, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": s.csrf_token },
      body: JSON.stringify({ reason: "forged" }),
    });
    return { csrf: s.csrf_token as string, status: r.status };
  }, id);
  expect(forged.csrf).toBeTruthy();
  expect(forged.status).toBe(403);

  const m = await manifest(server, id);
  expect(m.status).toBe("awaiting_approval");
  expect(m.verdict).toBeUndefined();
  expect(m.approval.state).toBe("pending");
  expect(m.approval.approvals).toEqual([]);
});

test("the diff viewer shows the demo change; replay, verify and the comparison of the two runs", async ({ page, server }) => {
  const item = await server.submit(contract("diff-me", fix));
  const a = (await server.waitRun(item.item_id, ["sealed"])).run_id;
  await login(page, server, "operator");
  await page.goto(`${server.url}/runs/${a}`);

  const diff = page.getByTestId("diff");
  await expect(diff.getByRole("list", { name: "Changed files" })).toContainText("src/greeting.sh");
  await expect(diff).toContainText("+1 added");
  const removed = diff.locator("tr[data-kind=del]");
  const added = diff.locator("tr[data-kind=add]");
  await expect(removed).toHaveCount(1);
  await expect(added).toHaveCount(1);
  // The marker is text, not only a colour.
  await expect(removed.locator(".mk")).toHaveText("-");
  await expect(removed).toContainText('echo "Helo, world"');
  await expect(added.locator(".mk")).toHaveText("+");
  await expect(added).toContainText('echo "Hello, world"');
  await expect(page.getByTestId("artifacts")).toContainText("diff.patch");
  await expect(page.getByTestId("task-result")).toContainText("sed -i s/Helo/Hello/ src/greeting.sh");

  await expect(await act(page, "Verify")).toContainText("intact");

  const queued = await act(page, "Replay");
  await expect(queued).toContainText("Replay queued as item");
  const replayItem = (await queued.innerText()).match(/item (\S+)/)![1];
  const b = (await server.waitRun(replayItem, ["sealed"])).run_id;
  expect((await manifest(server, b)).replay_of).toBe(a);

  await page.getByLabel("Other run id").fill(b);
  await page.getByRole("button", { name: "Compare", exact: true }).click();
  await expect(page).toHaveURL(new RegExp(`/runs/${a}/compare/${b}$`));
  const cmp = page.getByTestId("compare");
  await expect(cmp).toContainText("B replays A");
  await expect(cmp).toContainText("same contract");
  const verdictRow = cmp.getByRole("row", { name: /^Verdict/ });
  await expect(verdictRow).toContainText("success");
  await expect(verdictRow).toContainText("same");
  expect(await axe(page), "the compare page").toEqual([]);
  await shoot(page, "run-compare");
});

test("an image among the artifacts (a browser run's screenshot) is shown as an image; other files are links", async ({ page, server }) => {
  // A 2x2 PNG the run copies into its scratch folder, which the bundle keeps under artifacts/scratch/.
  const png = Buffer.from(
    "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAEElEQVR4nGP4z8AARAwQCgAf7gP9i18U1AAAAABJRU5ErkJggg==",
    "base64",
  );
  commit(server, { "scripts/shot.png": png, "scripts/shot.sh": 'cp scripts/shot.png "$CP_SCRATCH_DIR/shot.png"\n' });
  const item = await server.submit(contract("shot", ["sh scripts/shot.sh", ...fix]));
  const run = await server.waitRun(item.item_id, ["sealed"]);
  const listing = await server.call("GET", `/api/runs/${run.run_id}/artifacts`);
  const shot = listing.json.artifacts.find((a: any) => a.path.endsWith("shot.png"));
  expect(shot?.media_type, JSON.stringify(listing.json)).toBe("image/png");

  await login(page, server, "viewer");
  await page.goto(`${server.url}/runs/${run.run_id}`);
  const img = page.getByRole("img", { name: `Screenshot ${shot.path}` });
  await img.scrollIntoViewIfNeeded();
  await expect(img).toBeVisible();
  // The browser fetched and decoded it (with the session cookie): the same bytes the run wrote.
  await expect.poll(() => img.evaluate((i: HTMLImageElement) => i.complete && i.naturalWidth)).toBe(2);
  const link = page.getByTestId("artifacts").getByRole("link", { name: "diff.patch" });
  const patch = await page.request.get(server.url + (await link.getAttribute("href")));
  expect(patch.status()).toBe(200);
  expect(await patch.text()).toContain("+echo \"Hello, world\"");
});
