// Runs, newest first: filters by status, verdict, runner, pack, workflow and text, kept in the URL; cursor
// paging (each page asks the index for the next 50 only, so it stays fast over 100,000 runs); new runs
// appear without a reload while the first page is shown.
import { useEffect, useRef, useState } from "preact/hooks";
import { Link, useLocation, useSearch } from "wouter-preact";
import { api, ok, type paths, type Schemas } from "../api/client";
import { useLive } from "../api/live";
import { useApi } from "../api/use_api";
import { Badge } from "../components/badge";
import { DataTable } from "../components/data_table";
import { ErrorPanel } from "../components/error_panel";
import { Page } from "../components/page";
import { Time, duration } from "../components/time";

type Run = Schemas["RunSummary"];
const PAGE = 50;
const statuses = ["created", "running", "gating", "awaiting_approval", "sealed", "fenced"];
const verdicts = ["success", "failure", "denied", "timeout", "cancelled", "error"];
const textFilters = [
  { key: "runner", label: "Runner" },
  { key: "pack", label: "Pack" },
  { key: "workflow", label: "Workflow" },
  { key: "q", label: "Text (id, task)" },
] as const;
// The filters, each a query parameter GET /api/runs declares (the type check fails if one is dropped).
type RunsQuery = NonNullable<paths["/api/runs"]["get"]["parameters"]["query"]>;
const filterKeys = ["status", "verdict", "runner", "pack", "workflow", "q"] as const satisfies readonly (keyof RunsQuery)[];
type FilterKey = (typeof filterKeys)[number];
// Events after which the first page may show something new.
const listChanging = new Set(["RUN_STARTED", "RUN_SEALED", "RUN_AWAITING_APPROVAL", "APPROVAL_DECIDED", "RUNNER_FINISHED"]);

export function RunsPage() {
  const search = new URLSearchParams(useSearch());
  const [, navigate] = useLocation();
  const filters: Partial<Record<FilterKey, string>> = {};
  for (const k of filterKeys) {
    const v = search.get(k);
    if (v) filters[k] = v;
  }
  const cursor = search.get("cursor") ?? undefined;
  const [draft, setDraft] = useState<Partial<Record<FilterKey, string>>>(filters);
  // The cursors of the pages before this one, so "Previous" goes back without asking the server.
  const back = useRef<string[]>([]);

  const key = JSON.stringify([filters, cursor]);
  const page = useApi(() => ok(api.GET("/api/runs", { params: { query: { ...filters, cursor, limit: PAGE } as RunsQuery } })), [key]);

  const go = (f: Partial<Record<FilterKey, string>>, c?: string) => {
    const q = new URLSearchParams();
    for (const k of filterKeys) if (f[k]) q.set(k, f[k]!);
    if (c) q.set("cursor", c);
    const s = q.toString();
    navigate("/runs" + (s ? "?" + s : ""));
  };
  const apply = (e: Event) => {
    e.preventDefault();
    back.current = [];
    go(draft);
  };

  const pending = useRef<number>();
  const live = useLive("/api/events/stream", (e) => {
    if (cursor || !listChanging.has(String(e.data.type ?? e.name)) || pending.current) return;
    pending.current = window.setTimeout(() => {
      pending.current = undefined;
      page.reload();
    }, 500);
  });

  const runs = page.data?.runs ?? [];
  // For bench/ui_first_render.sh: when the first page of runs is on screen.
  useEffect(() => {
    if (page.data && !performance.getEntriesByName("cp:runs-rendered").length) performance.mark("cp:runs-rendered");
  }, [page.data]);
  return (
    <Page title="Runs" actions={<span class="small muted">{live ? "Live" : "Not live"}</span>}>
      <form class="filters" onSubmit={apply} role="search" aria-label="Filter runs">
        <label>
          Status
          <select name="status" value={draft.status ?? ""} onChange={(e) => setDraft({ ...draft, status: (e.target as HTMLSelectElement).value })}>
            <option value="">any</option>
            {statuses.map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>
        <label>
          Verdict
          <select name="verdict" value={draft.verdict ?? ""} onChange={(e) => setDraft({ ...draft, verdict: (e.target as HTMLSelectElement).value })}>
            <option value="">any</option>
            {verdicts.map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>
        {textFilters.map((f) => (
          <label key={f.key}>
            {f.label}
            <input
              name={f.key}
              value={draft[f.key] ?? ""}
              size={14}
              onInput={(e) => setDraft({ ...draft, [f.key]: (e.target as HTMLInputElement).value })}
            />
          </label>
        ))}
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
      {page.error && <ErrorPanel error={page.error} what="list the runs" />}
      <DataTable<Run>
        caption={page.loading && !page.data ? "Loading runs…" : `${runs.length} run(s) on this page${cursor ? "" : ", newest first"}`}
        rows={runs}
        rowKey={(r) => r.run_id}
        empty={page.loading ? "Loading…" : "No run matches."}
        columns={[
          { title: "Run", cell: (r) => <Link href={`/runs/${r.run_id}`} class="mono">{r.run_id}</Link> },
          { title: "Task", cell: (r) => r.task_id ?? "—" },
          { title: "Status", cell: (r) => <Badge value={r.status} /> },
          { title: "Verdict", cell: (r) => (r.verdict ? <Badge value={r.verdict} /> : <span class="muted">—</span>) },
          { title: "Runner", cell: (r) => r.runner ?? "—" },
          { title: "Pack", cell: (r) => r.pack ?? "—" },
          { title: "Workflow", cell: (r) => (r.workflow_id ? <Link href={`/workflows/${r.workflow_id}`}>{r.workflow_id}</Link> : "—") },
          { title: "Created", cell: (r) => <Time iso={r.created_at} /> },
          { title: "Took", num: true, cell: (r) => (r.duration_ms == null ? "—" : duration(r.duration_ms / 1000)) },
        ]}
      />
      <nav class="row" aria-label="Pages of runs" style={{ marginTop: "10px" }}>
        <button
          type="button"
          disabled={!cursor}
          onClick={() => {
            const prev = back.current.pop();
            go(filters, prev || undefined);
          }}
        >
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
