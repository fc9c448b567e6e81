// The queue page against a real serve whose scheduler is off (--no-scheduler), so what is queued stays
// queued until the test acts on it: submitting a contract (pasted, or picked as a file), the 422
// diagnostics shown at the line they point into, cancel and priority, and what a viewer may not do.
import { test as base, expect, login, shoot, startServer, contract, type Server } from "./fixtures";
import { rmSync } from "node:fs";
import { lineOfPointer, valueLines, JsonTextError } from "../src/pages/json_lines";

const test = base.extend<{}, { queueServer: Server }>({
  queueServer: [
    async ({}, use) => {
      const s = await startServer({ args: ["--no-scheduler"] });
      await use(s);
      await s.stop();
      rmSync(s.root, { recursive: true, force: true });
    },
    { scope: "worker" },
  ],
});

// The line (1-based) of the first line of `text` that holds `needle`, found without the page's code.
const lineHolding = (text: string, needle: string) => text.split("\n").findIndex((l) => l.includes(needle)) + 1;

test("a JSON pointer names the line its value starts on", () => {
  const text = '{\n  "a": 1,\n  "b": {\n    "c/d": [\n      true,\n      {"e~f": "x"}\n    ]\n  },\n  "g":\n    null\n}';
  expect(lineOfPointer(text, "")).toEqual({ line: 1, exact: true });
  expect(lineOfPointer(text, "/a")).toEqual({ line: 2, exact: true });
  expect(lineOfPointer(text, "/b/c~1d")).toEqual({ line: 4, exact: true });
  expect(lineOfPointer(text, "/b/c~1d/1/e~0f")).toEqual({ line: 6, exact: true });
  // The value's line, not its key's.
  expect(lineOfPointer(text, "/g")).toEqual({ line: 10, exact: true });
  // Something absent (a missing required property) is placed at its nearest ancestor that is there.
  expect(lineOfPointer(text, "/b/missing")).toEqual({ line: 3, exact: false });
  expect(lineOfPointer(text, "/b/c~1d/7")).toEqual({ line: 4, exact: false });
  // A key given twice keeps its last place, as JSON.parse keeps its last value.
  expect(lineOfPointer('{"k": 1,\n"k": 2}', "/k")).toEqual({ line: 2, exact: true });
  // Escapes and a "/" inside strings do not confuse it; CRLF line ends count once.
  expect(lineOfPointer('{"s": "a\\"}\\n/x",\r\n "t": 2}', "/t")).toEqual({ line: 2, exact: true });
  expect(lineOfPointer("[1,", "/0")).toBeNull();
  expect(lineOfPointer("{}", "no-slash")).toBeNull();
  // Text that is not JSON says where.
  const bad = (t: string) => {
    try {
      valueLines(t);
    } catch (e) {
      return e instanceof JsonTextError ? e.line : -1;
    }
    return 0;
  };
  expect(bad('{\n  "a": 1\n  "b": 2\n}')).toBe(3);
  expect(bad('{\n  "a": "line\nbreak"\n}')).toBe(2);
  expect(bad("[" .repeat(300) + "]".repeat(300))).toBe(1);
  expect(bad('{"a": [1, 2]}')).toBe(0);
});

test("an invalid contract submitted from the page shows each problem's pointer and line, and nothing is queued", async ({ page, queueServer: server }) => {
  await login(page, server, "operator");
  await page.goto(server.url + "/queue");
  const c = contract("ui-bad", ["true"]);
  c.budgets.wall_time_sec = "300"; // a string where an integer belongs, many lines down
  c.owner_agent.agent_id = 7; // and a number where a string belongs
  const text = JSON.stringify(c, null, 2);
  const budgetLine = lineHolding(text, '"wall_time_sec": "300"');
  const agentLine = lineHolding(text, '"agent_id": 7');
  expect(budgetLine).toBeGreaterThan(10);

  await page.getByLabel("Contract (JSON)").fill(text);
  await expect(page.locator("#contract-state")).toContainText("Task ui-bad");
  await page.getByRole("button", { name: "Queue contract" }).click();
  await page.getByRole("button", { name: "Yes, queue contract" }).click();
  await expect(page.getByRole("dialog").getByRole("alert")).toContainText("422");
  await page.getByRole("dialog").getByRole("button", { name: "Cancel" }).click();

  const diags = page.getByTestId("diagnostic");
  await expect(diags).toHaveCount(2);
  const budget = diags.filter({ hasText: "/contract/budgets/wall_time_sec" });
  await expect(budget.getByTestId("diagnostic-line")).toHaveText(`line ${budgetLine}`);
  await expect(budget).toContainText("type integer");
  // The line is shown marked, holding the value the pointer names.
  await expect(budget.locator(`.src-line.hl[data-line="${budgetLine}"]`)).toContainText('"wall_time_sec": "300"');
  const agent = diags.filter({ hasText: "/contract/owner_agent/agent_id" });
  await expect(agent.getByTestId("diagnostic-line")).toHaveText(`line ${agentLine}`);
  // Going to the line selects it in the editor.
  await budget.getByTestId("diagnostic-line").click();
  const selected = await page.getByLabel("Contract (JSON)").evaluate((t: HTMLTextAreaElement) => t.value.slice(t.selectionStart, t.selectionEnd));
  expect(selected).toContain('"wall_time_sec": "300"');
  await shoot(page, "queue-diagnostics");

  // Nothing was queued.
  const q = await server.call("GET", "/api/queue");
  expect(q.status).toBe(200);
  expect(q.json.items).toEqual([]);

  // Text that is not JSON is stopped in the page, with its line, and never sent.
  await page.getByLabel("Contract (JSON)").fill('{\n  "task_id": "x"\n  "title": "y"\n}');
  await expect(page.locator("#contract-state")).toContainText("line 3");
  await page.getByRole("button", { name: "Queue contract" }).click();
  await page.getByRole("button", { name: "Yes, queue contract" }).click();
  await expect(page.getByRole("dialog").getByRole("alert")).toContainText("not JSON");
  await page.getByRole("dialog").getByRole("button", { name: "Cancel" }).click();
  expect((await server.call("GET", "/api/queue")).json.items).toEqual([]);
});

test("a contract picked as a file is queued; priority and cancel from the page change the item as the API says", async ({ page, queueServer: server }) => {
  const first = await server.submit(contract("ui-first", ["true"]));
  // One that waits on the first: the page says what it waits on.
  const after = await server.call("POST", "/api/runs", "operator", { contract: contract("ui-after", ["true"]), depends_on: [first.item_id] });
  expect(after.status).toBe(202);
  await login(page, server, "operator");
  await page.goto(server.url + "/queue");
  await expect(page.getByRole("link", { name: first.item_id })).toBeVisible();

  await page.getByLabel("Contract file").setInputFiles({
    name: "picked.json",
    mimeType: "application/json",
    buffer: Buffer.from(JSON.stringify(contract("ui-picked", ["true"]), null, 2)),
  });
  await expect(page.getByLabel("Contract (JSON)")).toHaveValue(/"ui-picked"/);
  await page.getByLabel(/^Priority/).fill("7");
  await page.getByRole("button", { name: "Queue contract" }).click();
  await page.getByRole("button", { name: "Yes, queue contract" }).click();
  const outcome = page.getByRole("status").filter({ hasText: "Queued as" });
  await expect(outcome).toBeVisible();
  const itemId = (await outcome.textContent())!.match(/q-[A-Za-z0-9-]+/)![0];

  // The API has it, at priority 7, so it runs before the first one (priority 5): the page lists it first.
  const item = await server.call("GET", `/api/queue/${itemId}`);
  expect(item.json).toMatchObject({ state: "queued", task_id: "ui-picked", priority: 7 });
  const rows = page.locator("table").first().locator("tbody tr");
  await expect(rows.nth(0)).toContainText(itemId);
  await expect(rows.nth(1)).toContainText(first.item_id);
  await expect(page.getByRole("row").filter({ hasText: after.json.item_id })).toContainText(`waiting for item ${first.item_id}`);
  await expect(rows.nth(0)).toContainText("eligible");
  await expect(rows.nth(0)).toContainText("on_track");

  // The first item's priority raised to 9 from its panel: it now runs first.
  await page.getByRole("link", { name: first.item_id }).click();
  const panel = page.getByTestId("queue-item");
  await expect(panel).toContainText(first.item_id);
  await panel.getByRole("button", { name: "Change priority" }).click();
  const dialog = page.getByRole("dialog");
  await expect(dialog.getByLabel("Priority (0–9)")).toHaveValue("5");
  await dialog.getByLabel("Priority (0–9)").fill("12");
  await dialog.getByRole("button", { name: "Yes, change priority" }).click();
  await expect(dialog.getByRole("alert")).toContainText("0 to 9");
  expect((await server.call("GET", `/api/queue/${first.item_id}`)).json.priority).toBe(5);
  await dialog.getByLabel("Priority (0–9)").fill("9");
  await dialog.getByRole("button", { name: "Yes, change priority" }).click();
  await expect(panel.getByRole("status")).toContainText("Priority now 9");
  expect((await server.call("GET", `/api/queue/${first.item_id}`)).json.priority).toBe(9);
  await expect(panel.getByTestId("item-priority")).toHaveText("9");
  await expect(rows.nth(0)).toContainText(first.item_id);
  await expect(rows.nth(1)).toContainText(itemId);

  // Cancel the picked one from its panel, with a reason.
  await page.getByRole("link", { name: itemId }).click();
  await expect(panel).toContainText(itemId);
  await panel.getByRole("button", { name: "Cancel item" }).click();
  await dialog.getByLabel("Reason (optional, recorded)").fill("not needed after all");
  await dialog.getByRole("button", { name: "Yes, cancel item" }).click();
  await expect(panel.getByRole("status")).toContainText(`${itemId}: cancelled`);
  const cancelled = await server.call("GET", `/api/queue/${itemId}`);
  expect(cancelled.json.state).toBe("cancelled");
  expect(cancelled.json.reason).toContain("not needed after all");
  await expect(page.getByRole("table").nth(1)).toContainText(itemId);
  // The other item is untouched.
  expect((await server.call("GET", `/api/queue/${first.item_id}`)).json.state).toBe("queued");
  await page.getByRole("link", { name: after.json.item_id }).click();
  await expect(panel).toContainText("waiting for item");
  await shoot(page, "queue");
});

test("a viewer sees no submit, priority or cancel, and those forged from its session are refused 403 with the item unchanged", async ({ page, queueServer: server }) => {
  const item = await server.submit(contract("ui-viewer", ["true"]));
  await login(page, server, "viewer");
  await page.goto(server.url + `/queue?item=${item.item_id}`);
  await expect(page.getByTestId("queue-item")).toContainText("ui-viewer");
  await expect(page.getByRole("link", { name: item.item_id })).toBeVisible();
  await expect(page.getByRole("button", { name: "Queue contract" })).toHaveCount(0);
  await expect(page.getByLabel("Contract (JSON)")).toHaveCount(0);
  await expect(page.getByRole("button", { name: "Cancel item" })).toHaveCount(0);
  await expect(page.getByRole("button", { name: "Change priority" })).toHaveCount(0);
  await expect(page.getByText("need an operator token")).toBeVisible();

  // The session's own CSRF token rides along, so only the role can be what refuses them.
  const forged = await page.evaluate(async (id) => {
    const s = await (await fetch("/api/session")).json();
    const post = async (path: string, body: unknown) => {
      const r = await fetch(path, {
        method: "POST",
        headers: { "X-CSRF-Token": s.csrf_token, "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      return { status: r.status, code: (await r.json()).error?.code };
    };
    return {
      cancel: await post(`/api/queue/${id}/cancel`, {}),
      runCancel: await post(`/api/runs/${id}/cancel`, {}),
      priority: await post(`/api/queue/${id}/priority`, { priority: 9 }),
    };
  }, item.item_id);
  for (const r of [forged.cancel, forged.runCancel, forged.priority]) expect(r).toEqual({ status: 403, code: "forbidden" });
  const after = await server.call("GET", `/api/queue/${item.item_id}`);
  expect(after.json).toMatchObject({ state: "queued", priority: 5 });
  expect(after.json.cancel_requested).toBeUndefined();
});
