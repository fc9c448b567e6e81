// Every page: no serious or critical axe-core violation in light and dark, nothing wider than a 390 px
// phone screen, usable from the keyboard; a screenshot of each saved as a CI artifact.
import AxeBuilder from "@axe-core/playwright";
import { test, expect, login, shoot, contract, type Server } from "./fixtures";
import { pages } from "../src/nav";

async function seriousViolations(page: import("@playwright/test").Page) {
  const result = await new AxeBuilder({ page }).withTags(["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]).analyze();
  return result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(" ")).slice(0, 3).join(", ")}`);
}

// The pages to check: every page of the side bar, a run's page and the login form.
async function allPages(server: Server): Promise<{ name: string; path: string }[]> {
  const item = await server.submit(contract("a11y-run", ["sed -i s/Helo/Hello/ src/greeting.sh"]));
  const run = await server.waitRun(item.item_id, ["sealed", "awaiting_approval"]);
  const named = pages.map((p) => ({ name: p.path === "/" ? "command-tower" : p.path.slice(1), path: p.path }));
  return [...named, { name: "run-detail", path: `/runs/${run.run_id}` }];
}

async function settle(page: import("@playwright/test").Page) {
  await expect(page.locator("main h1")).toBeVisible();
  await expect(page.locator("main [role=status]:has-text('Loading')")).toHaveCount(0);
}

test("axe finds no serious or critical violation on any page, light or dark, wide or narrow", async ({ page, server }) => {
  test.setTimeout(300_000);
  const list = await allPages(server);
  await page.goto(server.url + "/login");
  expect(await seriousViolations(page), "login").toEqual([]);
  await login(page, server, "admin");
  for (const scheme of ["light", "dark"] as const) {
    await page.emulateMedia({ colorScheme: scheme });
    for (const width of [1280, 390]) {
      await page.setViewportSize({ width, height: 900 });
      for (const p of list) {
        await page.goto(server.url + p.path);
        await settle(page);
        expect(await seriousViolations(page), `${p.path} ${scheme} ${width}px`).toEqual([]);
        // Nothing makes the page itself scroll sideways (wide tables scroll inside their own box).
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        expect(overflow, `${p.path} ${scheme} ${width}px overflows by ${overflow}px`).toBeLessThanOrEqual(0);
        const suffix = scheme === "light" && width === 1280 ? "" : `-${scheme}-${width}`;
        await shoot(page, `page-${p.name}${suffix}`);
      }
    }
  }
});

test("the keyboard reaches every page and acts on it", async ({ page, server }) => {
  await login(page, server, "operator");
  await page.goto(server.url + "/");
  await settle(page);
  // The first Tab lands on the skip link, which moves focus to the content.
  await page.keyboard.press("Tab");
  await expect(page.getByRole("link", { name: "Skip to content" })).toBeFocused();
  // Tab on through the side bar to each page's link; Enter opens it.
  for (const p of pages.slice(1, 4)) {
    await page.goto(server.url + "/");
    await settle(page);
    const link = page.getByRole("navigation", { name: "Pages" }).getByRole("link", { name: p.label, exact: true });
    for (let i = 0; i < 30 && !(await link.evaluate((e) => e === document.activeElement)); i++) await page.keyboard.press("Tab");
    await expect(link).toBeFocused();
    await page.keyboard.press("Enter");
    await expect(page).toHaveURL(new RegExp(p.path + "$"));
    await expect(page.locator("main h1")).toHaveText(p.label === "Agents and roles" ? /Agents/ : new RegExp(p.label.split(" ")[0], "i"));
  }
});
