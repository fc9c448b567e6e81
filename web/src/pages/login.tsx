// Log in: a bearer token (from `cp-host tokens add`) is exchanged for a browser session. The token itself
// is sent once and kept nowhere by the page; the session lives in an HttpOnly cookie.
import { useState } from "preact/hooks";
import { useLocation, useSearch } from "wouter-preact";
import { useSession } from "../api/session";
import { ErrorPanel } from "../components/error_panel";
import { Page } from "../components/page";

export function LoginPage() {
  const { who, login } = useSession();
  const [token, setToken] = useState("");
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const [, navigate] = useLocation();
  const target = pageAfterLogin(new URLSearchParams(useSearch()).get("next"));

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      await login(token);
      setToken("");
      navigate(target);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Page title="Log in">
      {who && (
        <p class="notice">
          You are logged in as {who.token_id} ({who.role}). Logging in again replaces this session.
        </p>
      )}
      <form class="panel" onSubmit={submit}>
        <p>
          <label>
            API token
            <input
              type="password"
              name="token"
              autoComplete="off"
              required
              size={48}
              value={token}
              onInput={(e) => setToken((e.target as HTMLInputElement).value)}
            />
          </label>
        </p>
        <p class="muted small">
          Make one with <code>cp-host tokens add --file tokens.json --id NAME --role viewer|operator|admin</code> and
          start <code>cp-host serve --tokens tokens.json</code>. The page keeps a session cookie, never the token.
        </p>
        {error !== undefined && <ErrorPanel error={error} what="log in" />}
        <button type="submit" class="primary" disabled={busy}>
          {busy ? "Logging in…" : "Log in"}
        </button>
      </form>
    </Page>
  );
}

// Where `next` (anyone may craft a login link) leads after logging in: a page of this dashboard, as the
// browser reads the address, or the command tower. Checked on the parsed address, since browsers read
// "/\evil.example" or "/\t/evil.example" as "//evil.example", another site; and never the API or login itself.
export function pageAfterLogin(next: string | null): string {
  if (!next || !next.startsWith("/")) return "/";
  let u: URL;
  try {
    u = new URL(next, location.origin);
  } catch {
    return "/";
  }
  if (u.origin !== location.origin || u.pathname.startsWith("/api/") || u.pathname === "/api" || u.pathname.startsWith("/login"))
    return "/";
  return u.pathname + u.search + u.hash;
}
