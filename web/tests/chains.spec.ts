// The chain pages against a real serve and real chains: the project's example chain (PM → TECH_LEAD → WORKER
// → three REVIEWERs, quorum 2 → TESTING → TECH_LEAD → PM, a handoff between each), run with the CLI on the
// server's root, once as written and once with a reviewer and the testing step made to fail.
import { test, expect, login, shoot, bin, plugins, source, type Server } from "./fixtures";
import { spawnSync } from "node:child_process";
import { cpSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

// Runs the example chain (its contracts changed by `edit`) with `cp-host chain run`; returns the chain's run id.
function runChain(server: Server, name: string, edit: (dir: string) => void = () => {}): string {
  const dir = join(server.root, name);
  cpSync(join(source, "contracts/examples/chain"), dir, { recursive: true });
  edit(dir);
  const r = spawnSync(
    bin,
    ["--plugins", plugins, "--root", server.root, "chain", "run", join(dir, "greeting-loop.chain.json"), "--repo", server.repo],
    { encoding: "utf8", env: { ...process.env, CP_HOST_KEY_DIR: join(server.root, "keys") } },
  );
  const m = (r.stdout + r.stderr).match(/bundle\s+\S*\/runs\/(\S+)/);
  if (!m) throw new Error(`chain run gave no bundle (${r.status}): ${r.stdout}\n${r.stderr}`);
  return m[1];
}

const failing = (dir: string, file: string) => {
  const c = JSON.parse(readFileSync(join(dir, file), "utf8"));
  c.runtime_options.commands = ["false"];
  writeFileSync(join(dir, file), JSON.stringify(c, null, 2));
};

test("a chain is drawn step by step with its handoffs, reviewers' votes, quorum and lifecycle", async ({ page, server }) => {
  const good = runChain(server, "chain-good");
  const bad = runChain(server, "chain-bad", (dir) => {
    failing(dir, "review-3.json");
    failing(dir, "testing.json");
  });
  const api = await server.call("GET", `/api/chains/${bad}`);
  expect(api.status).toBe(200);

  await login(page, server, "viewer");
  await page.goto(server.url + "/chains");
  const rows = page.getByRole("table").getByRole("row");
  await expect(rows.filter({ hasText: good })).toContainText("success");
  await expect(rows.filter({ hasText: bad })).toContainText("failure");
  // Filters go to the API: by verdict, only the failed one.
  await page.getByLabel("Verdict").selectOption("failure");
  await page.getByRole("button", { name: "Filter" }).click();
  await expect(page).toHaveURL(/verdict=failure/);
  await expect(rows.filter({ hasText: bad })).toHaveCount(1);
  await expect(rows.filter({ hasText: good })).toHaveCount(0);
  await page.getByRole("button", { name: "Clear" }).click();
  await expect(rows.filter({ hasText: good })).toHaveCount(1);
  await shoot(page, "chains-list");

  // The chain that passed: seven role steps and six handoffs, in the chain file's order.
  await rows.filter({ hasText: good }).getByRole("link", { name: good }).click();
  await expect(page).toHaveURL(new RegExp(`/chains/${good}$`));
  const steps = page.getByTestId("chain-step");
  const handoffs = page.getByTestId("chain-handoff");
  await expect(steps).toHaveCount(7);
  await expect(handoffs).toHaveCount(6);
  const order = await page.locator(".chain-graph > li").evaluateAll((lis) => lis.map((li) => li.getAttribute("data-testid") + ":" + (li.querySelector("strong")?.textContent ?? "")));
  expect(order.slice(0, 4)).toEqual(["chain-step:PM", "chain-handoff:handoff", "chain-step:TECH_LEAD", "chain-handoff:handoff"]);
  await expect(handoffs.first()).toContainText("PM → TECH_LEAD");
  await expect(handoffs.first()).toContainText("Goal stated in docs/PLAN.md");
  await expect(handoffs.first()).toContainText("Risks: the test script is the only check");
  const review = steps.filter({ hasText: "REVIEWER" });
  await expect(review.getByTestId("quorum")).toContainText("3 of 3 approved, 2 needed");
  await expect(review.getByText("vote: approved")).toHaveCount(3);
  await expect(page.getByTestId("lifecycle")).toContainText("PM loop: pass");
  await expect(page.getByTestId("chain-outcome")).toContainText("success");
  await shoot(page, "chains");

  // The one that failed: reviewer 3 voted against (the quorum still met), testing failed, and the steps
  // after it were never reached.
  await page.goto(server.url + `/chains/${bad}`);
  await expect(page.getByTestId("chain-outcome")).toContainText("failure");
  const badReview = page.getByTestId("chain-step").filter({ hasText: "REVIEWER" });
  await expect(badReview.getByTestId("quorum")).toContainText("2 of 3 approved, 2 needed");
  await expect(badReview.getByText("vote: rejected")).toHaveCount(1);
  await expect(page.getByTestId("chain-step").filter({ hasText: "TESTING" })).toContainText("failure");
  const unreached = page.locator(".chain-step.not-reached");
  await expect(unreached).toHaveCount(2);
  await expect(unreached.first()).toContainText("not run");
  await shoot(page, "chain-failed");

  // A run that is not a chain is said so, with what to do.
  const step = api.json.steps.find((s: any) => s.kind === "task").runs[0].run_id;
  await page.goto(server.url + `/chains/${step}`);
  await expect(page.getByRole("alert")).toContainText("404");
});
