// The approvals inbox and the workflow pages against a real serve whose "high" pack needs two approvals
// within an hour: real runs (tool runner) come to await a decision, one is approved (once through the API,
// once from the page) and sealed success, one is rejected from the page; the workflow case then lists both.
import { test as base, expect, login, shoot, startServer, contract, type Server } from "./fixtures";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const test = base.extend<{}, { approvalServer: Server }>({
  approvalServer: [
    async ({}, use) => {
      const s = await startServer({
        prepare: (root) => {
          const file = join(root, "packs/high.json");
          const pack = JSON.parse(readFileSync(file, "utf8"));
          pack.approval = { approvers: 2, deadline_sec: 3600 };
          writeFileSync(file, JSON.stringify(pack, null, 2));
        },
      });
      await use(s);
      await s.stop();
      rmSync(s.root, { recursive: true, force: true });
    },
    { scope: "worker" },
  ],
});
test.describe.configure({ mode: "serial" });

// The run's manifest once the queue item's run has reached one of `statuses`. (GET /api/runs/{id} answers
// {run_id, manifest, ...}: the status is the manifest's.)
async function manifestOnceIn(server: Server, itemId: string, statuses: string[]): Promise<any> {
  const end = Date.now() + 90_000;
  for (;;) {
    const item = await server.call("GET", `/api/queue/${itemId}`);
    if (item.json?.run_id) {
      const run = await server.call("GET", `/api/runs/${item.json.run_id}`);
      if (run.status === 200 && statuses.includes(run.json.manifest?.status)) return run.json.manifest;
    }
    if (Date.now() > end) throw new Error(`item ${itemId} did not reach ${statuses}: ${JSON.stringify(item.json)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

// A run of the "high" pack in workflow wf-ui, waited on until it awaits its approvals.
async function awaiting(server: Server, taskId: string) {
  const c = contract(taskId, ["sed -i s/Helo/Hello/ src/greeting.sh"], { workflow_id: "wf-ui" });
  c.runtime_options.pack = "high";
  const item = await server.submit(c);
  return manifestOnceIn(server, item.item_id, ["awaiting_approval", "sealed"]);
}

test("the inbox counts down to each deadline and says who approved so far; approve and reject from the page", async ({ page, browser, approvalServer: server }) => {
  const keep = await awaiting(server, "ui-approve-me");
  expect(keep.status).toBe("awaiting_approval");
  const drop = await awaiting(server, "ui-reject-me");
  expect(drop.status).toBe("awaiting_approval");
  // A first approval, by the admin's token, before the page is opened.
  const first = await server.call("POST", `/api/runs/${keep.run_id}/approve`, "admin", { reason: "diff reviewed" });
  expect(first.json.outcome).toBe("recorded");

  await login(page, server, "operator");
  await page.goto(server.url + "/approvals");
  const cards = page.getByTestId("awaiting");
  await expect(cards).toHaveCount(2);
  const card = cards.filter({ hasText: keep.run_id });
  await expect(card.getByTestId("countdown")).toContainText(/\d+ min \d+ s left/);
  await expect(card.getByTestId("approved-by")).toContainText("1 of 2");
  await expect(card.getByTestId("approved-by")).toContainText("ui-admin");
  await expect(card.getByTestId("approved-by")).toContainText("diff reviewed");
  await expect(cards.filter({ hasText: drop.run_id }).getByTestId("approved-by")).toContainText("0 of 2");
  await expect(card.getByRole("link", { name: keep.run_id })).toHaveAttribute("href", `/runs/${keep.run_id}`);
  await shoot(page, "approvals");

  // A viewer sees the inbox, and no decision button.
  const viewer = await browser.newPage();
  await login(viewer, server, "viewer");
  await viewer.goto(server.url + "/approvals");
  await expect(viewer.getByTestId("awaiting")).toHaveCount(2);
  await expect(viewer.getByRole("button", { name: /^(Approve|Reject)/ })).toHaveCount(0);
  await viewer.close();

  // The second approval, from the page, completes it: sealed success.
  await card.getByRole("button", { name: "Approve ui-approve-me" }).click();
  await page.getByRole("dialog").getByLabel("Reason (optional)").fill("second look");
  await page.getByRole("button", { name: "Yes, approve ui-approve-me" }).click();
  await expect(page.getByTestId("decision")).toContainText(`${keep.run_id}: approved, now sealed (success)`);
  await expect(cards).toHaveCount(1);
  const sealed = await server.call("GET", `/api/runs/${keep.run_id}`);
  expect(sealed.json.manifest).toMatchObject({ status: "sealed", verdict: "success" });

  await page.getByRole("button", { name: "Reject ui-reject-me" }).click();
  await page.getByRole("button", { name: "Yes, reject ui-reject-me" }).click();
  await expect(page.getByTestId("decision")).toContainText(`${drop.run_id}: rejected, now sealed (denied)`);
  await expect(page.getByText("No run is awaiting a decision.")).toBeVisible();
  expect((await server.call("GET", `/api/runs/${drop.run_id}`)).json.manifest).toMatchObject({ status: "sealed", verdict: "denied" });
  expect((await server.call("GET", "/api/approvals")).json.count).toBe(0);
});

test("the workflow's case lists its runs and their outcomes", async ({ page, approvalServer: server }) => {
  await login(page, server, "viewer");
  await page.goto(server.url + "/workflows");
  const row = page.getByRole("row").filter({ hasText: "wf-ui" });
  await expect(row).toContainText("2");
  await shoot(page, "workflows");
  await row.getByRole("link", { name: "wf-ui" }).click();
  await expect(page).toHaveURL(/\/workflows\/wf-ui$/);
  await expect(page.getByRole("heading", { name: "Workflow wf-ui" })).toBeVisible();
  const runs = page.getByRole("table", { name: /runs, newest first/ });
  await expect(runs.getByRole("row")).toHaveCount(3);
  await expect(runs).toContainText("ui-approve-me");
  await expect(runs).toContainText("ui-reject-me");
  await expect(page.getByTestId("outcomes")).toContainText("1: success");
  await expect(page.getByTestId("outcomes")).toContainText("1: denied");
  await shoot(page, "workflow");
  // A workflow that does not exist is said so, with what to do.
  await page.goto(server.url + "/workflows/no-such-flow");
  await expect(page.getByRole("alert")).toContainText("404");
});
