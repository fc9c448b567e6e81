// Who is using the dashboard: the browser session made from a bearer token (POST /api/session), read back
// on every load (GET /api/session), so a reload keeps the session and its CSRF token.
import { createContext } from "preact";
import { useContext, useEffect, useState } from "preact/hooks";
import type { ComponentChildren } from "preact";
import { api, ApiError, ok, setCsrfToken } from "./client";

export type Who = { token_id: string; role: string; expires_at: string };
type SessionState = {
  who: Who | null;
  checked: boolean;
  login(token: string): Promise<void>;
  logout(): Promise<void>;
};

const SessionContext = createContext<SessionState>({
  who: null,
  checked: false,
  login: async () => {},
  logout: async () => {},
});

export function useSession() {
  return useContext(SessionContext);
}

export function SessionProvider({ children }: { children: ComponentChildren }) {
  const [who, setWho] = useState<Who | null>(null);
  const [checked, setChecked] = useState(false);

  useEffect(() => {
    ok(api.GET("/api/session"))
      .then((s) => {
        setCsrfToken(s.csrf_token ?? "");
        setWho({ token_id: s.token_id, role: s.role, expires_at: s.expires_at ?? "" });
      })
      .catch(() => setWho(null))
      .finally(() => setChecked(true));
  }, []);

  const login = async (token: string) => {
    const s = await ok(
      api.POST("/api/session", { headers: { Authorization: "Bearer " + token.trim() }, body: {} }),
    );
    setCsrfToken(s.csrf_token ?? "");
    setWho({ token_id: s.token_id ?? "", role: s.role ?? "", expires_at: s.expires_at ?? "" });
  };
  const logout = async () => {
    try {
      await ok(api.DELETE("/api/session"));
    } catch (e) {
      // A session that already ended is logged out all the same.
      if (!(e instanceof ApiError) || (e.status !== 401 && e.status !== 409)) throw e;
    }
    setCsrfToken("");
    setWho(null);
  };
  return <SessionContext.Provider value={{ who, checked, login, logout }}>{children}</SessionContext.Provider>;
}
