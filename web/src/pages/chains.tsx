// Chains: the chain executions newest first (filtered and paged as runs are); and one chain as a step graph
// with its handoffs and reviewers' votes, its lifecycle (did the roles close the PM loop) and where its
// branch ended. Both follow the live stream while something may still change.
import { useRef, useState } from "preact/hooks";
import { Link, useLocation, useSearch } from "wouter-preact";
import { api, ok, type paths, type Schemas } from "../api/client";
import { useLive } from "../api/live";
import { useApi } from "../api/use_api";
import { Badge } from "../components/badge";
import { DataTable } from "../components/data_table";
import { ErrorPanel } from "../components/error_panel";
import { Loading, Page } from "../components/page";
import { Time, duration } from "../components/time";
import { ChainGraph } from "./chain_graph";

type Chain = Schemas["ChainSummary"];
type ChainsQuery = NonNullable<paths["/api/chains"]["get"]["parameters"]["query"]>;
const PAGE = 50;
const filterKeys = ["status", "verdict", "workflow", "q"] as const satisfies readonly (keyof ChainsQuery)[];
type FilterKey = (typeof filterKeys)[number];
const statuses = ["created", "running", "sealed"];
const verdicts = ["success", "failure", "denied", "timeout", "cancelled", "error"];

// Calls `reload` on the live stream's events while `on`, at most twice a second.
function useLiveReload(on: boolean, reload: () => void): boolean {
  const pending = useRef<number>();
  return useLive("/api/events/stream", () => {
    if (!on || pending.current) return;
    pending.current = window.setTimeout(() => {
      pending.current = undefined;
      reload();
    }, 500);
  });
}

export function ChainsPage() {
  const search = new URLSearchParams(useSearch());
  const [, navigate] = useLocation();
  const filters: Partial<Record<FilterKey, string>> = {};
  for (const k of filterKeys) {
    const v = search.get(k);
    if (v) filters[k] = v;
  }
  const cursor = search.get("cursor") ?? undefined;
  const [draft, setDraft] = useState(filters);
  const back = useRef<string[]>([]);
  const key = JSON.stringify([filters, cursor]);
  const page = useApi(() => ok(api.GET("/api/chains", { params: { query: { ...filters, cursor, limit: PAGE } as ChainsQuery } })), [key]);
  const live = useLiveReload(!cursor, page.reload);
  const go = (f: Partial<Record<FilterKey, string>>, c?: string) => {
    const q = new URLSearchParams();
    for (const k of filterKeys) if (f[k]) q.set(k, f[k]!);
    if (c) q.set("cursor", c);
    const s = q.toString();
    navigate("/chains" + (s ? "?" + s : ""));
  };
  const chains = page.data?.chains ?? [];
  return (
    <Page title="Chains" actions={<span class="small muted">{live ? "Live" : "Not live (reconnecting)"}</span>}>
      <p class="muted small">
        A chain runs contracts for roles in order, with handoffs between them and reviewer quorums (<code>cp-host chain run</code>).
      </p>
      <form
        class="filters"
        role="search"
        aria-label="Filter chains"
        onSubmit={(e) => {
          e.preventDefault();
          back.current = [];
          go(draft);
        }}
      >
        <label>
          Status
          <select value={draft.status ?? ""} onChange={(e) => setDraft({ ...draft, status: (e.target as HTMLSelectElement).value })}>
            <option value="">any</option>
            {statuses.map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>
        <label>
          Verdict
          <select value={draft.verdict ?? ""} onChange={(e) => setDraft({ ...draft, verdict: (e.target as HTMLSelectElement).value })}>
            <option value="">any</option>
            {verdicts.map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>
        <label>
          Workflow
          <input value={draft.workflow ?? ""} size={14} onInput={(e) => setDraft({ ...draft, workflow: (e.target as HTMLInputElement).value })} />
        </label>
        <label>
          Text (id, chain, title)
          <input value={draft.q ?? ""} size={14} onInput={(e) => setDraft({ ...draft, q: (e.target as HTMLInputElement).value })} />
        </label>
        <button type="submit" class="primary">
          Filter
        </button>
        <button
          type="button"
          onClick={() => {
            setDraft({});
            back.current = [];
            go({});
          }}
        >
          Clear
        </button>
      </form>
      {page.error && <ErrorPanel error={page.error} what="list the chains" />}
      {!page.data && !page.error && <Loading what="the chains" />}
      {page.data && chains.length === 0 && (
        <p class="panel muted">{Object.keys(filters).length ? "No chain matches these filters." : "No chain has run yet: they come from cp-host chain run."}</p>
      )}
      {chains.length > 0 && (
        <DataTable<Chain>
          caption={`${chains.length} chain(s) on this page${cursor ? "" : ", newest first"}`}
          rows={chains}
          rowKey={(c) => c.run_id}
          columns={[
            { title: "Execution", cell: (c) => <Link href={`/chains/${c.run_id}`} class="mono">{c.run_id}</Link> },
            { title: "Chain", cell: (c) => <code>{c.chain_id}</code> },
            { title: "Title", cell: (c) => c.title ?? "—" },
            { title: "Status", cell: (c) => <Badge value={c.status} /> },
            { title: "Verdict", cell: (c) => (c.verdict ? <Badge value={c.verdict} /> : <span class="muted">—</span>) },
            { title: "Workflow", cell: (c) => (c.workflow_id ? <Link href={`/workflows/${c.workflow_id}`}>{c.workflow_id}</Link> : "—") },
            { title: "Started", cell: (c) => <Time iso={c.created_at} /> },
            { title: "Took", num: true, cell: (c) => (c.duration_ms == null ? "—" : duration(c.duration_ms / 1000)) },
          ]}
        />
      )}
      <nav class="row" aria-label="Pages of chains" style={{ marginTop: "10px" }}>
        <button type="button" disabled={!cursor} onClick={() => go(filters, back.current.pop() || undefined)}>
          Previous page
        </button>
        <button
          type="button"
          disabled={!page.data?.next_cursor}
          onClick={() => {
            back.current.push(cursor ?? "");
            go(filters, page.data?.next_cursor ?? undefined);
          }}
        >
          Next page
        </button>
      </nav>
    </Page>
  );
}

type Lifecycle = { closed?: boolean; require_pm_loop?: boolean; planned_roles?: string[]; observed_roles?: string[] };

export function ChainPage({ params }: { params: { id: string } }) {
  const id = params.id;
  const view = useApi(() => ok(api.GET("/api/chains/{id}", { params: { path: { id } } })), [id]);
  const c = view.data;
  // A sealed chain changes no more; until then its steps move with the stream.
  const live = useLiveReload(!c || c.status !== "sealed", view.reload);
  const life = (c?.lifecycle ?? null) as Lifecycle | null;
  const result = (c?.result ?? null) as { branch?: string; commit?: string } | null;
  return (
    <Page title={c?.title ? `Chain ${c.chain_id}: ${c.title}` : `Chain ${c?.chain_id ?? id}`} actions={<span class="small muted">{c?.status === "sealed" ? "Sealed" : live ? "Live" : "Not live (reconnecting)"}</span>}>
      <p>
        <Link href="/chains">All chains</Link>
      </p>
      {view.error && <ErrorPanel error={view.error} what={`read chain ${id}`} />}
      {!c && !view.error && <Loading what="the chain" />}
      {c && (
        <>
          <dl class="facts">
            <dt>Execution</dt>
            <dd>
              <Link href={`/runs/${c.run_id}`} class="mono">
                {c.run_id}
              </Link>
            </dd>
            <dt>Outcome</dt>
            <dd data-testid="chain-outcome">
              <Badge value={c.status} /> {c.verdict && <Badge value={c.verdict} />} {c.reason}
            </dd>
            {c.workflow_id && (
              <>
                <dt>Workflow</dt>
                <dd>
                  <Link href={`/workflows/${c.workflow_id}`}>{c.workflow_id}</Link>
                </dd>
              </>
            )}
            {life && (
              <>
                <dt>Lifecycle</dt>
                <dd data-testid="lifecycle">
                  <Badge value={life.closed ? "pass" : "fail"} label="PM loop" />{" "}
                  <span class="small">{(life.observed_roles ?? []).join(" → ") || "no role ran"}</span>
                  {life.require_pm_loop === false && <span class="small muted"> (the loop was not required)</span>}
                </dd>
              </>
            )}
            <dt>Branch</dt>
            <dd>
              {result?.branch ? (
                <>
                  <code>{result.branch}</code> at <code>{(result.commit ?? "").slice(0, 12)}</code>
                </>
              ) : c.branch ? (
                <code>{c.branch}</code>
              ) : (
                <span class="muted">nothing committed</span>
              )}
              {c.baseline_commit && (
                <span class="small muted">
                  {" "}
                  from <code>{c.baseline_commit.slice(0, 12)}</code>
                </span>
              )}
            </dd>
            <dt>Started</dt>
            <dd>
              <Time iso={c.started_at ?? c.created_at} />
              {c.finished_at && (
                <>
                  , ended <Time iso={c.finished_at} />
                </>
              )}
            </dd>
          </dl>
          {c.events_complete === false && (
            <p class="error" role="alert">
              The chain's event log is larger than serve reads for one view: the steps it records late may be shown as not reached yet. Each
              step's own run, linked from its box, is complete.
            </p>
          )}
          <h2>Steps</h2>
          <ChainGraph steps={c.steps} />
        </>
      )}
    </Page>
  );
}
