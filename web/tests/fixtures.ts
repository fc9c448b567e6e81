// A real `cp-host serve` on 127.0.0.1 for the dashboard's tests: a fresh runtime root with the project's
// packs and policies, a git copy of the sample repository, and one token per role. Runs are made for real
// (tool runner contracts, the fake codex CLI) through the API.
import { test as base, expect, type Page } from "@playwright/test";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const source = resolve(fileURLToPath(new URL("../..", import.meta.url)));
const buildDir = process.env.CP_BUILD_DIR ?? join(source, "build");
export const bin = process.env.CP_HOST_BIN ?? join(buildDir, "bin/cp-host");
export const plugins = process.env.CP_PLUGIN_DIR ?? join(buildDir, "plugins");
export const shots = process.env.CP_UI_SHOTS ?? join(buildDir, "ui-screenshots");

export type Role = "viewer" | "operator" | "admin";

export class Server {
  readonly url: string;
  readonly tokens: Record<Role, string>;
  constructor(
    readonly root: string,
    readonly repo: string,
    private readonly child: ChildProcess,
    url: string,
    tokens: Record<Role, string>,
  ) {
    this.url = url;
    this.tokens = tokens;
  }

  // A call to the API with a role's bearer token (how the tests make runs and check outcomes).
  async call(method: string, path: string, role: Role = "admin", body?: unknown): Promise<{ status: number; json: any }> {
    const r = await fetch(this.url + path, {
      method,
      headers: { Authorization: "Bearer " + this.tokens[role], "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    let json: any = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = text;
    }
    return { status: r.status, json };
  }

  // Submits a contract to the queue; returns the queue item.
  async submit(contract: unknown, role: Role = "operator") {
    const r = await this.call("POST", "/api/runs", role, { contract });
    expect(r.status, JSON.stringify(r.json)).toBe(202);
    return r.json;
  }

  // Waits until the queue item has a run in one of `statuses`; returns the run's manifest.
  async waitRun(itemId: string, statuses: string[], timeoutMs = 90_000): Promise<any> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const item = await this.call("GET", `/api/queue/${itemId}`);
      const runId = item.json?.run_id;
      if (runId) {
        const run = await this.call("GET", `/api/runs/${runId}`);
        if (run.status === 200 && statuses.includes(run.json.manifest?.status)) return run.json.manifest;
      }
      if (Date.now() > end) throw new Error(`item ${itemId} did not reach ${statuses}: ${JSON.stringify(item.json)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  // Stops serve and waits for it to exit (it finishes writing before the test removes its root).
  async stop() {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((r) => this.child.once("exit", r));
    this.child.kill("SIGTERM");
    await exited;
  }
}

function host(args: string[], cwd?: string) {
  const r = spawnSync(bin, ["--plugins", plugins, ...args], { cwd, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`cp-host ${args.join(" ")} failed (${r.status}): ${r.stderr}`);
  return r.stdout.trim();
}

// A contract for the sample repository: the demo contract with other commands (and a task id).
export function contract(taskId: string, commands: string[], extra: Record<string, unknown> = {}) {
  const c = JSON.parse(readFileSync(join(source, "contracts/examples/fix-greeting.json"), "utf8"));
  c.task_id = taskId;
  c.runtime_options.commands = commands;
  return { ...c, ...extra };
}

// Starts serve over a fresh project; `prepare(root)` may add files (runs, policies) before it starts;
// `plugins` is the plugin folder serve loads (default: the build's).
export async function startServer(
  opts: { prepare?: (root: string) => void; args?: string[]; plugins?: string } = {},
): Promise<Server> {
  const root = mkdtempSync(join(tmpdir(), "cp-ui-"));
  for (const d of ["packs", "policies"]) cpSync(join(source, d), join(root, d), { recursive: true });
  const repo = join(root, "repo");
  cpSync(join(source, "examples/sample-repo"), repo, { recursive: true, filter: (s) => !s.endsWith("/.git") });
  mkdirSync(join(repo, "scripts"), { recursive: true });
  writeFileSync(join(repo, "scripts/slow.sh"), "for i in 1 2 3 4 5 6; do echo step $i; sleep 1; done\n");
  const git = (args: string) => {
    const r = spawnSync("sh", ["-c", args], { cwd: repo, encoding: "utf8" });
    if (r.status !== 0) throw new Error(r.stderr);
  };
  git("git init -q -b main && git add -A && git -c user.name=t -c user.email=t@localhost commit -q -m init");
  const tokensFile = join(root, "tokens.json");
  const tokens = {} as Record<Role, string>;
  for (const role of ["viewer", "operator", "admin"] as Role[])
    tokens[role] = host(["tokens", "add", "--file", tokensFile, "--id", `ui-${role}`, "--role", role]);
  opts.prepare?.(root);
  const child = spawn(
    bin,
    [
      "--plugins", opts.plugins ?? plugins, "--root", root, "serve", "--listen", "127.0.0.1:0", "--tokens", tokensFile, "--repo", repo,
      // CP_UI_DIR: test a dashboard built on disk (npm run build) rather than the one built into cp-host.
      ...(process.env.CP_UI_DIR ? ["--ui-dir", process.env.CP_UI_DIR] : []),
      ...(opts.args ?? []),
    ],
    { cwd: root, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, CP_HOST_KEY_DIR: join(root, "keys") } },
  );
  let err = "";
  child.stderr!.on("data", (d) => (err += d));
  const url = await new Promise<string>((ok, fail) => {
    let out = "";
    const timer = setTimeout(() => fail(new Error("serve did not start: " + err)), 30_000);
    child.stdout!.on("data", (d) => {
      out += d;
      const m = out.match(/http:\/\/127\.0\.0\.1:\d+/);
      if (m) {
        clearTimeout(timer);
        ok(m[0]);
      }
    });
    child.on("exit", (code) => fail(new Error(`serve exited (${code}): ${err}`)));
  });
  return new Server(root, repo, child, url, tokens);
}

// Logs the page in with a role's token through the login form.
export async function login(page: Page, server: Server, role: Role) {
  await page.goto(server.url + "/login");
  await page.getByLabel("API token").fill(server.tokens[role]);
  await page.getByRole("button", { name: "Log in" }).click();
  await expect(page.getByTestId("who")).toContainText(role);
}

// A full-page screenshot saved as a CI artifact.
export async function shoot(page: Page, name: string) {
  mkdirSync(shots, { recursive: true });
  await page.screenshot({ path: join(shots, name + ".png"), fullPage: true });
}

// One serve per test file, started before its first test and stopped after its last.
export const test = base.extend<{}, { server: Server }>({
  server: [
    async ({}, use) => {
      const s = await startServer();
      await use(s);
      await s.stop();
      rmSync(s.root, { recursive: true, force: true });
    },
    { scope: "worker" },
  ],
});
export { expect };
