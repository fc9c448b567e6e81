// Agents and roles: every live run with its role, stage, worktree, files changed and held locks (kept
// current from the event stream); the runners and roles; and a role's config, edited, previewed as a diff,
// then applied by an admin.
import { useEffect, useRef, useState } from "preact/hooks";
import { Link, useLocation, useSearch } from "wouter-preact";
import { ApiError, api, ok, type Schemas } from "../api/client";
import { useLive } from "../api/live";
import { can } from "../api/roles";
import { useSession } from "../api/session";
import { useApi } from "../api/use_api";
import { ActionButton } from "../components/action_button";
import { Badge } from "../components/badge";
import { DataTable } from "../components/data_table";
import { ErrorPanel } from "../components/error_panel";
import { Loading, Page } from "../components/page";
import { Time } from "../components/time";

type LiveRun = Schemas["AgentsStatus"]["runs"][number];
type Role = Schemas["RoleView"];
type Runner = Schemas["AgentsOverview"]["runners"][number];
type Result = Schemas["RoleConfigResult"];
type Problem = Result["problems"][number];
type Change = Schemas["RoleConfigChange"];

// ---- live status --------------------------------------------------------------------------------------

function FilesChanged({ f }: { f: LiveRun["files_changed"] }) {
  const n = f.count ?? 0;
  if (!n) return <span class="muted">none</span>;
  return (
    <details>
      <summary>
        {n}
        {f.more ? "+" : ""} file(s)
      </summary>
      <ul class="small mono">
        {(f.paths ?? []).map((p) => (
          <li key={p}>{p}</li>
        ))}
      </ul>
    </details>
  );
}

function LiveStatus() {
  const status = useApi(() => ok(api.GET("/api/agents/status")), []);
  const pending = useRef<number>();
  // Every event may move a run's stage: refresh at most once a second.
  const live = useLive("/api/events/stream", () => {
    if (pending.current) return;
    pending.current = window.setTimeout(() => {
      pending.current = undefined;
      status.reload();
    }, 1000);
  });
  const runs = status.data?.runs ?? [];
  return (
    <section aria-labelledby="live-h">
      <div class="spread">
        <h2 id="live-h">Live runs</h2>
        <span class="small muted">{live ? "Live" : "Not live (reconnecting)"}</span>
      </div>
      {status.error && <ErrorPanel error={status.error} what="read the agents' status" />}
      <DataTable<LiveRun>
        caption={status.data ? `${status.data.count} live run(s), oldest first` : "Loading live runs…"}
        rows={runs}
        rowKey={(r) => r.run_id}
        empty={status.loading && !status.data ? "Loading…" : "No run is live."}
        columns={[
          { title: "Run", cell: (r) => <Link href={`/runs/${r.run_id}`} class="mono">{r.run_id}</Link> },
          { title: "Role", cell: (r) => <strong>{r.role}</strong> },
          { title: "Agent", cell: (r) => `${r.agent_id} · ${r.runner}` },
          { title: "Stage", cell: (r) => <Badge value={r.stage} /> },
          { title: "Worktree", cell: (r) => <span class="mono small">{r.worktree}</span> },
          { title: "Files changed", cell: (r) => <FilesChanged f={r.files_changed} /> },
          {
            title: "Held locks",
            cell: (r) =>
              r.held_locks?.length ? (
                <Link href="/locks">{r.held_locks.map((l) => l.path).join(" ")}</Link>
              ) : (
                <span class="muted">none</span>
              ),
          },
          {
            title: "Last event",
            cell: (r) =>
              r.last_event ? (
                <>
                  <code>{r.last_event.type}</code> <Time iso={r.last_event.ts} />
                </>
              ) : (
                "—"
              ),
          },
        ]}
      />
    </section>
  );
}

// ---- a line diff of two JSON documents ---------------------------------------------------------------

type Line = { kind: "same" | "add" | "del"; text: string };

// The longest common subsequence of lines; beyond a few thousand lines, everything old removed and
// everything new added (a role's entry is a dozen lines, so that never happens in practice).
export function lineDiff(a: string[], b: string[]): Line[] {
  if (a.length * b.length > 4_000_000)
    return [...a.map((text) => ({ kind: "del" as const, text })), ...b.map((text) => ({ kind: "add" as const, text }))];
  const n = a.length, m = b.length;
  const lcs: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--)
    for (let j = m - 1; j >= 0; j--) lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
  const out: Line[] = [];
  let i = 0, j = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) {
      out.push({ kind: "same", text: a[i] });
      i++;
      j++;
    } else if (lcs[i + 1][j] >= lcs[i][j + 1]) out.push({ kind: "del", text: a[i++] });
    else out.push({ kind: "add", text: b[j++] });
  }
  while (i < n) out.push({ kind: "del", text: a[i++] });
  while (j < m) out.push({ kind: "add", text: b[j++] });
  return out;
}

const pretty = (v: unknown) => (v == null ? [] : JSON.stringify(v, null, 2).split("\n"));

function Diff({ before, after, label }: { before: unknown; after: unknown; label: string }) {
  const lines = lineDiff(pretty(before), pretty(after));
  return (
    <div class="diff" role="region" aria-label={label} tabIndex={0} data-testid="config-diff">
      {lines.map((l, k) => (
        <div key={k} class={l.kind === "same" ? "" : l.kind}>
          {l.kind === "add" ? "+ " : l.kind === "del" ? "- " : "  "}
          {l.text}
        </div>
      ))}
    </div>
  );
}

function Problems({ problems }: { problems: Problem[] }) {
  if (!problems.length) return null;
  return (
    <ul class="error" aria-label="Problems">
      {problems.map((p, k) => (
        <li key={k}>
          <code>{p.pointer}</code>: {p.message}
          {p.expected ? ` (expected ${p.expected})` : ""}
        </li>
      ))}
    </ul>
  );
}

// The result of a preview or apply, with its problems when it was refused (422 carries the same fields).
function Outcome({ r }: { r: Result }) {
  return (
    <div class="panel" data-testid="config-outcome">
      <p>
        <Badge value={r.outcome} />{" "}
        {r.message}
      </p>
      <Problems problems={r.problems ?? []} />
      {r.outcome !== "invalid" && <Diff before={r.current} after={r.proposed} label="What the change does to the role's entry" />}
      {r.changes?.length > 0 && (
        <details>
          <summary>{r.changes.length} change(s) as a JSON Patch</summary>
          <pre class="block small">{JSON.stringify(r.changes, null, 2)}</pre>
        </details>
      )}
      {r.prompt && (r.prompt as { changed?: boolean }).changed && (
        <p class="small">The prompt changes ({String((r.prompt as { prompt_ref?: string }).prompt_ref)}).</p>
      )}
      {r.event && (
        <p class="small">
          Recorded as host event {String((r.event as { type?: string }).type ?? "ROLE_CONFIG_APPLIED")} #
          {String((r.event as { seq?: number }).seq ?? "")}.
        </p>
      )}
    </div>
  );
}

// A refusal whose details are the result itself (422 invalid): show it as an outcome with its problems.
function resultOf(e: unknown): Result | undefined {
  if (e instanceof ApiError && e.details && typeof e.details["outcome"] === "string") return e.details as unknown as Result;
  return undefined;
}

// ---- one role's config editor ------------------------------------------------------------------------

function RoleEditor({ role }: { role: string }) {
  const { who } = useSession();
  const view = useApi(() => ok(api.GET("/api/agents/roles/{role}/config", { params: { path: { role } } })), [role]);
  const [config, setConfig] = useState("");
  const [prompt, setPrompt] = useState("");
  const [parseError, setParseError] = useState<string>();
  const [preview, setPreview] = useState<{ for: string; r?: Result; error?: unknown }>();
  const [applied, setApplied] = useState<Result>();
  const [busy, setBusy] = useState(false);
  const v = view.data;
  const promptText = (v?.prompt as { text?: string } | null)?.text ?? "";

  // A fresh copy of what is on disk whenever the role (re)loads.
  useEffect(() => {
    if (!v) return;
    setConfig(JSON.stringify(v.config ?? {}, null, 2));
    setPrompt(promptText);
    setPreview(undefined);
  }, [v]);

  const body = (): Change => {
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(config);
    } catch (e) {
      throw new Error("The config is not JSON: " + (e as Error).message);
    }
    if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error("The config must be a JSON object.");
    return {
      config: parsed as Change["config"],
      ...(prompt !== promptText ? { prompt } : {}),
      ...(v?.role_config?.sha256 ? { base_sha256: v.role_config.sha256 } : {}),
    };
  };
  const draftKey = config + "\u0000" + prompt;

  const doPreview = async (e: Event) => {
    e.preventDefault();
    setApplied(undefined);
    let b;
    try {
      b = body();
      setParseError(undefined);
    } catch (err) {
      setParseError((err as Error).message);
      return;
    }
    setBusy(true);
    try {
      const r = await ok(api.POST("/api/agents/roles/{role}/config/preview", { params: { path: { role } }, body: b }));
      setPreview({ for: draftKey, r });
    } catch (err) {
      setPreview({ for: draftKey, r: resultOf(err), error: err });
    } finally {
      setBusy(false);
    }
  };

  if (view.error) return <ErrorPanel error={view.error} what={`read the config of ${role}`} />;
  if (!v) return <Loading what={`the config of ${role}`} />;
  const mayPreview = can(who?.role, "operator");
  const mayApply = can(who?.role, "admin");
  const previewed = preview && preview.for === draftKey && preview.r?.outcome === "previewed";

  return (
    <section aria-labelledby="editor-h" class="panel">
      <h2 id="editor-h">Config of {role}</h2>
      <p class="small muted">
        {v.description ?? ""} Stored in <code>{v.role_config?.path ?? "policies/role_config.json"}</code>
        {v.role_config?.sha256 ? (
          <>
            {" "}(sha256 <span class="mono">{v.role_config.sha256.slice(0, 12)}…</span>)
          </>
        ) : null}
        . A change reaches the runs compiled after it only.
      </p>
      <form onSubmit={doPreview}>
        <p>
          <label class="block-label">
            The role's entry (JSON)
            <textarea
              name="config"
              spellcheck={false}
              class="mono"
              value={config}
              readOnly={!mayPreview}
              aria-invalid={parseError ? true : undefined}
              aria-describedby={parseError ? "config-parse-error" : undefined}
              onInput={(e) => setConfig((e.target as HTMLTextAreaElement).value)}
            />
          </label>
        </p>
        {parseError && (
          <p class="error" id="config-parse-error" role="alert">
            {parseError} Fix it and preview again.
          </p>
        )}
        <p>
          <label class="block-label">
            Prompt ({String((v.prompt as { prompt_ref?: string } | null)?.prompt_ref ?? "none")})
            <textarea
              name="prompt"
              class="prompt"
              value={prompt}
              readOnly={!mayPreview}
              onInput={(e) => setPrompt((e.target as HTMLTextAreaElement).value)}
            />
          </label>
        </p>
        {mayPreview ? (
          <div class="row">
            <button type="submit" class="primary" disabled={busy}>
              {busy ? "Previewing…" : "Preview"}
            </button>
            <button
              type="button"
              onClick={() => {
                setConfig(JSON.stringify(v.config ?? {}, null, 2));
                setPrompt(promptText);
                setPreview(undefined);
                setParseError(undefined);
              }}
            >
              Reset
            </button>
            {mayApply && previewed && (
              <ActionButton
                label={`Apply to ${role}`}
                title={`Apply this config to ${role}?`}
                explain="Runs compiled from now on get it; runs already started keep theirs. The change is recorded with your reason."
                fields={[{ name: "reason", label: "Reason", placeholder: "why the role changes" }]}
                act={async (values) => {
                  const b = body();
                  try {
                    const r = await ok(
                      api.POST("/api/agents/roles/{role}/config/apply", {
                        params: { path: { role } },
                        body: { ...b, ...(values.reason ? { reason: values.reason } : {}) },
                      }),
                    );
                    setApplied(r);
                    return `${role}: ${r.outcome}`;
                  } catch (err) {
                    const r = resultOf(err);
                    if (r) setApplied(r);
                    throw err;
                  }
                }}
                done={() => view.reload()}
              />
            )}
          </div>
        ) : (
          <p class="small muted">Previewing a change needs an operator; applying it needs an admin.</p>
        )}
        {mayPreview && !mayApply && <p class="small muted">Only an admin may apply a change.</p>}
      </form>
      {preview && preview.for !== draftKey && <p class="small muted">The config changed since this preview: preview it again.</p>}
      {preview?.r && (
        <>
          <h3>Preview</h3>
          <Outcome r={preview.r} />
        </>
      )}
      {preview?.error !== undefined && !preview.r && <ErrorPanel error={preview.error} what="preview the change" />}
      {applied && (
        <>
          <h3>Applied</h3>
          <Outcome r={applied} />
        </>
      )}
    </section>
  );
}

// ---- the page ------------------------------------------------------------------------------------------

export function AgentsPage() {
  const overview = useApi(() => ok(api.GET("/api/agents")), []);
  const search = new URLSearchParams(useSearch());
  const [, navigate] = useLocation();
  const selected = search.get("role");
  const o = overview.data;
  return (
    <Page title="Agents and roles">
      <LiveStatus />
      <h2>Roles</h2>
      {overview.error && <ErrorPanel error={overview.error} what="list the roles" />}
      {o && !o.role_config.valid && (
        <div class="error" role="alert">
          <p>
            <strong>{o.role_config.path ?? "The role config"} is not valid.</strong> Runs fall back as roles.md says.
          </p>
          <pre class="small">{JSON.stringify(o.role_config.problems ?? [], null, 2)}</pre>
        </div>
      )}
      <DataTable<Role>
        caption={o ? `${o.roles.length} role(s); choose one to see and change its config` : "Loading roles…"}
        rows={o?.roles ?? []}
        rowKey={(r) => r.role}
        empty={overview.loading ? "Loading…" : "No role is registered or configured."}
        columns={[
          {
            title: "Role",
            cell: (r) => (
              <Link
                href={`/agents?role=${encodeURIComponent(r.role)}`}
                aria-current={r.role === selected ? "true" : undefined}
              >
                {r.role}
              </Link>
            ),
          },
          { title: "What it does", cell: (r) => r.description ?? "—" },
          { title: "Approves", cell: (r) => (r.can_approve ? "yes" : "no") },
          { title: "Runner", cell: (r) => String((r.runtime as { runner?: string } | null)?.runner ?? "—") },
          { title: "Allowed runners", cell: (r) => (r.allowed_runners == null ? <span class="muted">any</span> : r.allowed_runners.join(", ") || "none") },
          {
            title: "Prompt",
            cell: (r) => {
              const p = r.prompt as { prompt_ref?: string; bytes?: number; error?: string } | null;
              if (!p) return <span class="muted">none</span>;
              if (p.error) return <span class="error small">{p.error}</span>;
              return <span class="small mono">{p.prompt_ref} ({p.bytes} B)</span>;
            },
          },
        ]}
      />
      {selected && (
        <>
          <p>
            <button type="button" onClick={() => navigate("/agents")}>
              Close the editor
            </button>
          </p>
          <RoleEditor key={selected} role={selected} />
        </>
      )}
      <h2>Runners</h2>
      <DataTable<Runner>
        caption={o ? `${o.runners.length} runner plugin(s) loaded` : "Loading runners…"}
        rows={o?.runners ?? []}
        rowKey={(r) => r.id ?? ""}
        empty="No runner plugin is loaded."
        columns={[
          { title: "Runner", cell: (r) => <code>{r.id}</code> },
          { title: "Version", cell: (r) => r.version ?? "—" },
          { title: "Isolation", cell: (r) => r.isolation ?? "—" },
          { title: "Capabilities", cell: (r) => (r.capabilities ?? []).join(", ") || "—" },
          { title: "Roles that may use it", cell: (r) => (r.roles ?? []).join(", ") || "—" },
        ]}
      />
    </Page>
  );
}
