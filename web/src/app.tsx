// The dashboard's shell: the session, the side bar, and one route per page (each page has its own URL).
import { useEffect, useState } from "preact/hooks";
import { Link, Redirect, Route, Switch, useLocation } from "wouter-preact";
import { SessionProvider, useSession } from "./api/session";
import { pages } from "./nav";
import { applyTheme, storedTheme, type Theme } from "./theme";
import { LoginPage } from "./pages/login";
import { TowerPage } from "./pages/tower";
import { RunsPage } from "./pages/runs";
import { routes } from "./routes";
import { Loading } from "./components/page";
import { Guard } from "./components/guard";

function SideBar() {
  const [location] = useLocation();
  const [open, setOpen] = useState(false);
  useEffect(() => setOpen(false), [location]);
  const current = (p: string) => (p === "/" ? location === "/" : location === p || location.startsWith(p + "/"));
  return (
    <nav class={"side" + (open ? " open" : "")} aria-label="Pages">
      <div class="side-head">
        <Link href="/" class="brand">
          <img src="/favicon.svg" width={22} height={22} alt="" /> cp-host
        </Link>
        <button type="button" class="menu-toggle" aria-expanded={open} aria-controls="nav-list" onClick={() => setOpen(!open)}>
          Menu
        </button>
      </div>
      <ul class="nav" id="nav-list">
        {pages.map((p) => (
          <li key={p.path}>
            <Link href={p.path} aria-current={current(p.path) ? "page" : undefined}>
              {p.label}
            </Link>
          </li>
        ))}
      </ul>
    </nav>
  );
}

function TopBar() {
  const { who, logout } = useSession();
  const [theme, setTheme] = useState<Theme>(storedTheme());
  const [, navigate] = useLocation();
  return (
    <div class="topbar">
      <label class="row">
        <span class="sr-only">Colour scheme</span>
        <select
          aria-label="Colour scheme"
          value={theme}
          onChange={(e) => {
            const t = (e.target as HTMLSelectElement).value as Theme;
            setTheme(t);
            applyTheme(t);
          }}
        >
          <option value="system">System theme</option>
          <option value="light">Light</option>
          <option value="dark">Dark</option>
        </select>
      </label>
      {who && (
        <>
          <span data-testid="who">
            {who.token_id} · <strong>{who.role}</strong>
          </span>
          <button type="button" onClick={() => logout().then(() => navigate("/login"))}>
            Log out
          </button>
        </>
      )}
    </div>
  );
}

function Authed() {
  const { who, checked } = useSession();
  const [location] = useLocation();
  if (!checked) return <Loading what="your session" />;
  if (!who) return <Redirect to={"/login?next=" + encodeURIComponent(location + location_search())} />;
  // A page that fails to draw what the API gave says so instead of leaving a blank page (a new page clears it).
  return (
    <Guard what="this page" reset={location}>
      <Switch>
        <Route path="/" component={TowerPage} />
        <Route path="/runs" component={RunsPage} />
        {routes.map((r) => (
          <Route key={r.path} path={r.path} component={r.component} />
        ))}
        <Route>
          <h1>No such page</h1>
          <p>
            There is no dashboard page at <code>{location}</code>. <Link href="/">Go to the command tower</Link>.
          </p>
        </Route>
      </Switch>
    </Guard>
  );
}

function location_search() {
  return typeof window === "undefined" ? "" : window.location.search;
}

export function App() {
  useEffect(() => applyTheme(storedTheme()), []);
  return (
    <SessionProvider>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <div class="shell">
        <SideBar />
        <div class="content">
          <TopBar />
          <main id="main" tabIndex={-1}>
            <Switch>
              <Route path="/login" component={LoginPage} />
              <Route>
                <Authed />
              </Route>
            </Switch>
          </main>
        </div>
      </div>
    </SessionProvider>
  );
}
