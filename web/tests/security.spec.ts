// The dashboard against what a run writes (names, events, artifacts, a bundle changed after its seal) and
// against other pages in the same browser. Each test proves the bad thing did not happen: no script ran in
// the dashboard's origin (a marker it would have set is absent), no write was made (the queue unchanged), no
// verdict of an unverified bundle was shown as one.
import { readFileSync, writeFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import type { Page } from "@playwright/test";
import { test, expect, login, shoot, contract, type Server } from "./fixtures";

const fix = ["sed -i s/Helo/Hello/ src/greeting.sh"];
// What every planted script would do: leave a mark in the dashboard origin's storage.
const mark = (how: string) => `localStorage.setItem('pwned','${how}');window.__pwned='${how}'`;
const markup = "<img src=x onerror=window.__pwned=1>";

function commit(server: Server, files: Record<string, string>) {
  for (const [path, content] of Object.entries(files)) writeFileSync(join(server.repo, path), content);
  const git = spawnSync("sh", ["-c", "git add -A && git -c user.name=t -c user.email=t@localhost commit -q -m test-files"], {
    cwd: server.repo,
    encoding: "utf8",
  });
  expect(git.status, git.stderr).toBe(0);
}

async function pwned(page: Page) {
  return page.evaluate(() => localStorage.getItem("pwned") ?? (window as any).__pwned ?? null);
}

function bundle(server: Server, id: string) {
  return join(server.root, ".runtime-cache/cortexpilot/runs", id);
}

// A run whose diff, events and artifacts hold markup and scripts: files named with markup, an .html, .svg,
// .xhtml page and a text file that is valid JavaScript, left in its scratch folder (kept as artifacts).
let hostileRun: string | undefined;
async function hostile(server: Server): Promise<string> {
  if (hostileRun) return hostileRun;
  const script = [
    'd="$CP_SCRATCH_DIR"',
    'cp scripts/planted/* "$d/"',
    `echo hi > "$d/${markup}.txt"`,
    `echo hi > "src/${markup}.sh"`,
    ...fix,
  ].join("\n");
  spawnSync("mkdir", ["-p", join(server.repo, "scripts/planted")]);
  commit(server, {
    "scripts/hostile.sh": script + "\n",
    "scripts/planted/page.html": `<!doctype html><script>${mark("html")}</script>`,
    "scripts/planted/page.xhtml": `<html xmlns="http://www.w3.org/1999/xhtml"><script>${mark("xhtml")}</script></html>`,
    "scripts/planted/page": `<!doctype html><script>${mark("sniffed")}</script>`,
    "scripts/planted/pic.svg": `<svg xmlns="http://www.w3.org/2000/svg"><script>${mark("svg")}</script></svg>`,
    "scripts/planted/code.txt": mark("script"),
  });
  const item = await server.submit(contract("hostile", [`sh scripts/hostile.sh '${markup}'`], { title: `${markup} title` }));
  const run = await server.waitRun(item.item_id, ["sealed"]);
  hostileRun = run.run_id as string;
  return hostileRun;
}

// Dialogs a planted script would open (alert), per test.
let dialogs: string[] = [];
test.beforeEach(async ({ page }) => {
  dialogs = [];
  page.on("dialog", (d) => {
    dialogs.push(d.message());
    d.dismiss().catch(() => {});
  });
});
test.afterEach(() => expect(dialogs).toEqual([]));

test("run data holding markup is shown as text: names, events and artifact names run nothing", async ({ page, server }) => {
  const id = await hostile(server);
  await login(page, server, "viewer");
  await page.goto(`${server.url}/runs`);
  await expect(page.getByRole("link", { name: id })).toBeVisible();
  await page.goto(`${server.url}/runs/${id}`);
  // The markup is there, as text.
  await expect(page.getByTestId("timeline")).toContainText(`sh scripts/hostile.sh '${markup}'`);
  await expect(page.getByRole("link", { name: `src/${markup}.sh` })).toBeVisible();
  await expect(page.getByTestId("artifacts")).toContainText(`scratch/${markup}.txt`);
  // And nothing of it became an element or ran.
  await expect(page.locator("img[src=x]")).toHaveCount(0);
  expect(await pwned(page)).toBeNull();
});

test("an artifact opened from the dashboard runs nothing in the dashboard's origin", async ({ page, server }) => {
  const id = await hostile(server);
  await login(page, server, "viewer");
  await page.goto(`${server.url}/runs/${id}`);
  const table = page.getByTestId("artifacts");
  for (const name of ["page.html", "page.xhtml", "page", "pic.svg", "code.txt"]) {
    const link = table.getByRole("link", { name: `scratch/${name}`, exact: true });
    const href = (await link.getAttribute("href"))!;
    // What the API answers: never sniffed, never framed, and a sandbox (an opaque origin) if shown at all.
    const r = await page.request.get(server.url + href);
    expect(r.status(), name).toBe(200);
    expect(r.headers()["content-type"], name).not.toMatch(/html|svg|xml/);
    expect(r.headers()["x-content-type-options"], name).toBe("nosniff");
    expect(r.headers()["content-security-policy"], name).toContain("sandbox");
    // Opened as the operator would (the link opens a tab): downloaded or shown, it runs nothing here.
    const [tab] = await Promise.all([page.context().waitForEvent("page"), link.click()]);
    await tab.waitForLoadState().catch(() => {});
    expect(await tab.evaluate(() => (window as any).__pwned ?? null).catch(() => null), name).toBeNull();
    await tab.close();
  }
  expect(await pwned(page)).toBeNull();
});

test("markup injected into a page could run nothing: inline script is refused, and so is an artifact as a script", async ({ page, server }) => {
  const id = await hostile(server);
  await login(page, server, "viewer");
  await page.goto(`${server.url}/runs/${id}`);
  await expect(page.getByTestId("artifacts")).toBeVisible();
  // As if some field had been rendered as HTML: an inline script, an inline handler, and a script whose
  // source is a run's artifact (same origin, so script-src 'self' alone would let it run).
  const how = await page.evaluate(
    async ({ src, mark }) => {
      // An inline handler would run before this listener, which is added after it.
      const box = document.createElement("div");
      box.innerHTML = `<img src="/favicon.svg" onload="${mark}">`;
      const img = box.querySelector("img")!;
      const shown = new Promise((ok) => img.addEventListener("load", ok));
      document.body.appendChild(box);
      await shown;
      const inline = document.createElement("script");
      inline.textContent = mark;
      document.body.appendChild(inline);
      const s = document.createElement("script");
      s.src = src;
      const loaded = await new Promise<string>((ok) => {
        s.onload = () => ok("loaded");
        s.onerror = () => ok("refused");
        document.body.appendChild(s);
      });
      return loaded;
    },
    { src: `/api/runs/${encodeURIComponent(id)}/artifacts/scratch/code.txt`, mark: mark("injected") },
  );
  expect(how).toBe("refused");
  expect(await pwned(page)).toBeNull();
});

test("another site, or another port of this host, cannot read the CSRF token, act with the session or frame the dashboard", async ({ page, server }) => {
  await login(page, server, "operator");
  const queued = async () => (await server.call("GET", "/api/queue", "viewer")).json.items.length as number;
  const before = await queued();
  const body = JSON.stringify({ contract: contract("forged", ["true"]) });
  // The attacker's pages, served from this host on another port (a real server: a browser treats a page of
  // a loopback address as local, and lets it reach serve).
  const site = createServer((_req, res) => {
    res.setHeader("Content-Type", "text/html");
    res.end("<!doctype html><title>attacker</title><p>attacker page</p>");
  });
  await new Promise<void>((ok) => site.listen(0, "127.0.0.1", ok));
  const aport = (site.address() as AddressInfo).port;
  try {
    // 127.0.0.1 on another port is the same site as serve, whose page can even read the cp_csrf cookie
    // (cookies ignore ports); localhost is another site, to which the cookies do not go at all.
    for (const origin of [`http://127.0.0.1:${aport}`, `http://localhost:${aport}`]) {
      await page.goto(origin + "/api/attacker.html");
      const out = await page.evaluate(
        async ({ api, body, own }) => {
          const o: Record<string, string> = {};
          // serve is reachable from here (an opaque answer, not a network error): what follows is refused
          // by serve and the browser, not by a wall in between.
          o.reach = await fetch(api + "/api/health", { mode: "no-cors" }).then(
            () => "reached",
            () => "unreachable",
          );
          try {
            const r = await fetch(api + "/api/session", { credentials: "include" });
            o.read = await r.text();
          } catch {
            o.read = "refused";
          }
          const csrf = /cp_csrf=([^;]+)/.exec(document.cookie)?.[1] ?? "";
          o.cookie = csrf ? "readable" : "unreadable";
          // A form-like POST (no preflight) carries no CSRF header; one with the header needs a preflight.
          await fetch(api + "/api/runs", { method: "POST", credentials: "include", mode: "no-cors", headers: { "Content-Type": "text/plain" }, body }).catch(() => {});
          try {
            const r = await fetch(api + "/api/runs", {
              method: "POST",
              credentials: "include",
              headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
              body,
            });
            o.forged = String(r.status);
          } catch {
            o.forged = "refused";
          }
          // Frames: the attacker's own page (it can be framed), then the dashboard and an API answer.
          for (const src of [own + "/frameable.html", api + "/", api + "/runs", api + "/api/openapi.json"]) {
            const f = document.createElement("iframe");
            f.src = src;
            const done = new Promise((ok) => f.addEventListener("load", ok));
            document.body.appendChild(f);
            await done;
          }
          return o;
        },
        { api: server.url, body, own: origin },
      );
      expect(out.reach, origin).toBe("reached");
      expect(out.read, origin).toBe("refused");
      expect(out.forged, origin).toBe("refused");
      if (origin.includes("127.0.0.1")) expect(out.cookie, "the same site reads cp_csrf and still cannot act").toBe("readable");
      const [own, ...framed] = page.frames().filter((f) => f !== page.mainFrame());
      expect(await own.locator("p").innerText()).toBe("attacker page");
      // No frame shows the dashboard or the API: the browser refused each (frame-ancestors 'none').
      expect(framed.length).toBe(3);
      for (const f of framed) {
        const html = await f.evaluate(() => document.documentElement.outerHTML).catch(() => "");
        expect(html, f.url()).not.toContain('id="app"');
        expect(html, f.url()).not.toContain("openapi");
      }
    }
  } finally {
    site.close();
  }
  expect(await queued()).toBe(before);
  // The session itself is untouched: the dashboard still works for its holder.
  await page.goto(server.url + "/runs");
  await expect(page.getByTestId("who")).toContainText("operator");
});

test("login's next never leads off the dashboard, whatever the link says", async ({ page, server }) => {
  const origin = server.url;
  const hostile = [
    "//evil.example/x",
    "/\\evil.example/x",
    "/\t/evil.example/x",
    "https://evil.example/",
    "javascript:alert(1)",
    "/api/runs",
    "/login?next=//evil.example",
  ];
  for (const next of hostile) {
    await page.goto(`${origin}/login?next=${encodeURIComponent(next)}`);
    await page.getByLabel("API token").fill(server.tokens.viewer);
    await page.getByRole("button", { name: "Log in" }).click();
    await expect(page.getByTestId("who")).toContainText("viewer");
    await expect(page.locator("main h1")).toHaveText("Command tower");
    expect(new URL(page.url()).origin, next).toBe(origin);
    expect(new URL(page.url()).pathname, next).toBe("/");
    await expect(page.getByRole("alert"), next).toHaveCount(0);
  }
  // A page of the dashboard is where it leads, with its query.
  await page.goto(`${origin}/login?next=${encodeURIComponent("/runs?status=sealed")}`);
  await page.getByLabel("API token").fill(server.tokens.viewer);
  await page.getByRole("button", { name: "Log in" }).click();
  await expect(page).toHaveURL(`${origin}/runs?status=sealed`);
});

test("a bundle changed after its seal is never shown as a verdict or a proof; a report of an unexpected shape leaves the rest of the page", async ({ page, server }) => {
  const item = await server.submit(contract("tampered", fix));
  const run = await server.waitRun(item.item_id, ["sealed"]);
  expect(run.verdict).toBe("success");
  const id = run.run_id as string;
  await login(page, server, "viewer");
  await page.goto(`${server.url}/runs/${id}`);
  await expect(page.getByTestId("proof")).toContainText("Proof of success");
  await expect(page.getByTestId("untrusted")).toHaveCount(0);

  // Someone with the files rewrites the reason and a gate's report (a field of another type).
  const dir = bundle(server, id);
  const m = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8"));
  m.reason = "approved by security";
  writeFileSync(join(dir, "manifest.json"), JSON.stringify(m));
  const report = join(dir, "reports/gate_diff_scope.json");
  const r = JSON.parse(readFileSync(report, "utf8"));
  r.isolation = 7;
  r.diagnostics = [{ severity: { not: "a string" }, message: ["a", "list"] }];
  writeFileSync(report, JSON.stringify(r));
  const seen = await server.call("GET", `/api/runs/${id}`, "viewer");
  expect(seen.json.verification.state).toBe("tampered");

  await page.reload();
  const verdict = page.getByTestId("verdict");
  await expect(page.getByTestId("untrusted")).toContainText("does not verify");
  await expect(verdict).toContainText("Claimed verdict: success");
  await expect(verdict).not.toHaveClass(/\bok\b/);
  await expect(verdict.locator(".badge.ok")).toHaveCount(0);
  await expect(page.getByTestId("proof")).not.toContainText("Proof of success");
  await expect(page.getByTestId("proof")).toContainText("not a proof");
  // The gates say they could not be shown; the rest of the page is there.
  await expect(page.getByTestId("guard")).toContainText("the run's gates");
  await expect(page.getByRole("heading", { name: "Diff" })).toBeVisible();
  await expect(page.getByRole("link", { name: "src/greeting.sh" })).toBeVisible();
  await expect(page.getByTestId("artifacts")).toContainText("diff.patch");
  await expect(page.getByTestId("facts")).toContainText("tampered");
  await shoot(page, "run-detail-does-not-verify");
});
