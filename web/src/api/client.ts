// The typed API client. Its types are generated from docs/openapi.json (npm run gen:api), so a route or
// field the dashboard uses that the API stops serving fails the type check, and with it the build.
import createClient, { type Middleware } from "openapi-fetch";
import type { paths, components } from "./schema.gen";

export type Schemas = components["schemas"];
export type { paths };

// The browser session's CSRF token, sent with every unsafe request (the session cookie alone is refused).
let csrfToken = "";
export function setCsrfToken(token: string) {
  csrfToken = token;
}

const csrf: Middleware = {
  onRequest({ request }) {
    if (request.method !== "GET" && request.method !== "HEAD" && csrfToken)
      request.headers.set("X-CSRF-Token", csrfToken);
    return request;
  },
};

export const api = createClient<paths>({ baseUrl: location.origin, credentials: "same-origin" });
api.use(csrf);

// An answer the API refused, with what the operator can do about it.
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
  get pointer(): string | undefined {
    const p = this.details["pointer"];
    return typeof p === "string" ? p : undefined;
  }
  // What to do next, by kind of refusal.
  get hint(): string {
    if (this.status === 0) return "cp-host serve is not answering. Check that it is running, then retry.";
    if (this.status === 401) return "Your session has ended or was never opened. Log in again with a token.";
    if (this.status === 403)
      return "Your token's role may not do this. Ask an admin for a token with a higher role.";
    if (this.status === 404) return "It is not there (any more). Go back to the list and pick another.";
    if (this.status === 409) return "Its state changed meanwhile. Reload to see where it stands now.";
    if (this.status === 422 || this.status === 400) return "Fix the input where it is marked and send it again.";
    if (this.status === 429 || this.status === 503) return "serve is busy. Wait a moment and retry.";
    return "serve failed to answer. Its log says why; retry, and report it if it keeps failing.";
  }
}

type Answer<T> = { data?: T; error?: unknown; response: Response };

// The data of an answer, or an ApiError made from the API's error body {"error":{code,message,details}}.
export async function ok<T>(answer: Promise<Answer<T>>): Promise<T> {
  let a: Answer<T>;
  try {
    a = await answer;
  } catch (e) {
    throw new ApiError(0, "unreachable", "The request did not reach cp-host serve: " + String(e));
  }
  if (a.response.ok) return a.data as T;
  const body = a.error as { error?: { code?: string; message?: string; details?: Record<string, unknown> } };
  const e = body && typeof body === "object" ? body.error : undefined;
  throw new ApiError(
    a.response.status,
    e?.code ?? "http_" + a.response.status,
    e?.message ?? `${a.response.status} ${a.response.statusText}`,
    e?.details ?? {},
  );
}
