// An API refusal shown with what to do about it, never a blank page.
import { ApiError } from "../api/client";

export function ErrorPanel({ error, what }: { error: unknown; what?: string }) {
  const e = error instanceof ApiError ? error : new ApiError(0, "client", String(error));
  return (
    <div class="error" role="alert">
      <p>
        <strong>{what ? `Could not ${what}` : "Something went wrong"}</strong>
        {e.status ? ` (${e.status} ${e.code})` : ""}: {e.message}
      </p>
      {e.pointer && (
        <p>
          At <code>{e.pointer}</code>
        </p>
      )}
      <p>{e.hint}</p>
      {e.status === 401 && (
        <p>
          <a href={"/login?next=" + encodeURIComponent(location.pathname + location.search)}>Log in</a>
        </p>
      )}
    </div>
  );
}
