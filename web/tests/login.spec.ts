// Logging in exchanges a token for a session cookie; logging out ends the session on the server too.
import { test, expect, login, shoot } from "./fixtures";

test("a page asked without a session leads to the login form, and back after logging in", async ({ page, server }) => {
  await page.goto(server.url + "/queue");
  await expect(page).toHaveURL(/\/login\?next=%2Fqueue/);
  await page.getByLabel("API token").fill("not-a-token");
  await page.getByRole("button", { name: "Log in" }).click();
  await expect(page.getByRole("alert")).toContainText("401");
  await shoot(page, "login");
  await page.getByLabel("API token").fill(server.tokens.operator);
  await page.getByRole("button", { name: "Log in" }).click();
  await expect(page).toHaveURL(/\/queue$/);
  await expect(page.getByTestId("who")).toContainText("ui-operator");
  // The session is a cookie the page cannot read, and the token is kept nowhere in the page.
  const cookies = await page.context().cookies();
  const session = cookies.find((c) => c.name === "cp_session");
  expect(session?.httpOnly).toBe(true);
  expect(session?.sameSite).toBe("Strict");
  const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.cookie);
  expect(stored).not.toContain(server.tokens.operator);
  // A reload keeps the session.
  await page.reload();
  await expect(page.getByTestId("who")).toContainText("operator");
});

test("logging out ends the session: the old cookie no longer opens the API", async ({ page, server }) => {
  await login(page, server, "viewer");
  const before = (await page.context().cookies()).find((c) => c.name === "cp_session")!;
  const asked = await page.request.get(server.url + "/api/runs");
  expect(asked.status()).toBe(200);
  await page.getByRole("button", { name: "Log out" }).click();
  await expect(page).toHaveURL(/\/login/);
  // The cookie the browser had is refused by the server now (not only forgotten by the browser).
  const r = await fetch(server.url + "/api/runs", { headers: { Cookie: `cp_session=${before.value}` } });
  expect(r.status).toBe(401);
  await page.goto(server.url + "/runs");
  await expect(page).toHaveURL(/\/login/);
});

test("the dashboard's files: content types, long-cached hashed assets, ETags, gzip", async ({ server }) => {
  const index = await fetch(server.url + "/");
  expect(index.status).toBe(200);
  expect(index.headers.get("content-type")).toContain("text/html");
  expect(index.headers.get("cache-control")).toBe("no-cache");
  expect(index.headers.get("content-security-policy")).toContain("default-src 'self'");
  const html = await index.text();
  const js = html.match(/\/assets\/app-[A-Z0-9]+\.js/)![0];
  const css = html.match(/\/assets\/app-[A-Z0-9]+\.css/)![0];
  const a = await fetch(server.url + js);
  expect(a.headers.get("content-type")).toContain("javascript");
  expect(a.headers.get("cache-control")).toContain("immutable");
  expect(a.headers.get("content-encoding")).toBe("gzip");
  const etag = a.headers.get("etag")!;
  const again = await fetch(server.url + js, { headers: { "If-None-Match": etag } });
  expect(again.status).toBe(304);
  expect((await fetch(server.url + css)).headers.get("content-type")).toContain("text/css");
  // A page of the dashboard's router gets index.html; a missing asset is 404; the API keeps its 404s.
  expect(await (await fetch(server.url + "/runs/some-run")).text()).toBe(html);
  expect((await fetch(server.url + "/assets/missing.js")).status).toBe(404);
  expect((await fetch(server.url + "/api/nothing")).status).toBe(404);
  // A path that climbs out of the assets never reaches a file outside them (escapes are not decoded).
  for (const p of ["/assets/..%2f..%2f..%2f..%2fetc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/assets/%2e%2e/x.js"]) {
    const r = await fetch(server.url + p);
    expect(await r.text()).not.toContain("root:");
  }
  expect((await fetch(server.url + "/", { method: "POST" })).status).toBe(405);
});
