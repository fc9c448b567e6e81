// Workflows: the cases (one per workflow_id, kept as runs of it seal), newest latest run first; and one case
// with its runs, what they came to, the roles its latest run bound, and what of it is still queued.
import { useRef } from "preact/hooks";
import { Link } from "wouter-preact";
import { api, ok } from "../api/client";
import { useLive } from "../api/live";
import { useApi } from "../api/use_api";
import { Badge } from "../components/badge";
import { DataTable } from "../components/data_table";
import { ErrorPanel } from "../components/error_panel";
import { Loading, Page } from "../components/page";
import { Time } from "../components/time";

// A case as listed, and as read whole (docs/api.md; the shape is case.json's).
type CaseSummary = {
  workflow_id: string;
  status?: string;
  verdict?: string;
  latest_run_id?: string;
  latest_created_at?: string;
  run_count?: number;
  updated_at?: string;
};
type CaseRun = {
  run_id: string;
  task_id?: string;
  status?: string;
  verdict?: string;
  reason?: string;
  created_at?: string;
  finished_at?: string;
  runner?: string;
  pack?: string;
  replay_of?: string;
  chain?: { run_id?: string; step_id?: string; role?: string };  // set on a step of a chain: the chain's run
};
type Binding = { role?: string; agent_id?: string; registered?: boolean; can_approve?: boolean; runner?: string; runner_allowed?: boolean; allowed_runners?: string[] };
type Case = CaseSummary & {
  outcomes?: Record<string, number>;
  runs?: CaseRun[];
  workflow_case_read_model?: { role_binding_summary?: { authority?: string; owner?: Binding; assigned?: Binding } };
};

// Reloads `reload` on the live stream's events, at most twice a second (cases change as runs seal).
function useLiveReload(reload: () => void): boolean {
  const pending = useRef<number>();
  return useLive("/api/events/stream", () => {
    if (pending.current) return;
    pending.current = window.setTimeout(() => {
      pending.current = undefined;
      reload();
    }, 500);
  });
}

const outcome = (c: { verdict?: string; status?: string }) => <Badge value={c.verdict ?? c.status} />;

export function WorkflowsPage() {
  const list = useApi(() => ok(api.GET("/api/workflows")), []);
  const live = useLiveReload(list.reload);
  const cases = (list.data?.workflows ?? []) as CaseSummary[];
  return (
    <Page title="Workflows" actions={<span class="small muted">{live ? "Live" : "Not live (reconnecting)"}</span>}>
      <p class="muted small">
        A workflow gathers the runs whose contracts name the same <code>workflow_id</code>; its case is updated as each of them seals.
      </p>
      {list.error && <ErrorPanel error={list.error} what="list the workflows" />}
      {!list.data && !list.error && <Loading what="the workflows" />}
      {list.data && cases.length === 0 && <p class="panel muted">No workflow yet: a run joins one when its contract names a workflow_id.</p>}
      {cases.length > 0 && (
        <DataTable<CaseSummary>
          caption={`${list.data?.count ?? cases.length} workflow(s), newest latest run first`}
          rows={cases}
          rowKey={(c) => c.workflow_id}
          columns={[
            { title: "Workflow", cell: (c) => <Link href={`/workflows/${encodeURIComponent(c.workflow_id)}`}>{c.workflow_id}</Link> },
            { title: "Latest outcome", cell: outcome },
            { title: "Runs", num: true, cell: (c) => c.run_count ?? "—" },
            { title: "Latest run", cell: (c) => (c.latest_run_id ? <Link href={`/runs/${c.latest_run_id}`} class="mono">{c.latest_run_id}</Link> : "—") },
            { title: "Latest started", cell: (c) => <Time iso={c.latest_created_at} /> },
            { title: "Updated", cell: (c) => <Time iso={c.updated_at} /> },
          ]}
        />
      )}
    </Page>
  );
}

function BindingFacts({ who, b }: { who: string; b?: Binding }) {
  if (!b) return null;
  return (
    <>
      <dt>{who}</dt>
      <dd>
        {b.role ?? "—"} <span class="muted">({b.agent_id || "no agent id"})</span>
        {b.registered === false && <> <Badge value="warn" label="role not registered" /></>}
        {b.runner && (
          <>
            {" "}· runner <code>{b.runner}</code> {b.runner_allowed === false ? <Badge value="denied" label="runner" /> : null}
          </>
        )}
      </dd>
    </>
  );
}

export function WorkflowPage({ params }: { params: { id: string } }) {
  const id = params.id;
  const one = useApi(() => ok(api.GET("/api/workflows/{workflow_id}", { params: { path: { workflow_id: id } } })) as Promise<Case>, [id]);
  // The items of this workflow that have not run yet.
  const queue = useApi(() => ok(api.GET("/api/queue", { params: { query: { state: "queued" } } })), []);
  const live = useLiveReload(() => {
    one.reload();
    queue.reload();
  });
  const c = one.data;
  const waiting = ((queue.data?.items ?? []) as { item_id: string; task_id?: string; workflow_id?: string; priority: number; waiting_on?: string; eligible: boolean }[]).filter(
    (it) => it.workflow_id === id,
  );
  const binding = c?.workflow_case_read_model?.role_binding_summary;
  return (
    <Page title={`Workflow ${id}`} actions={<span class="small muted">{live ? "Live" : "Not live (reconnecting)"}</span>}>
      <p>
        <Link href="/workflows">All workflows</Link>
      </p>
      {one.error && <ErrorPanel error={one.error} what={`read workflow ${id}`} />}
      {!c && !one.error && <Loading what="the workflow" />}
      {c && (
        <>
          <dl class="facts">
            <dt>Now</dt>
            <dd>
              {outcome(c)} after {c.run_count ?? c.runs?.length ?? 0} run(s)
            </dd>
            <dt>Outcomes</dt>
            <dd class="row" data-testid="outcomes">
              {Object.entries(c.outcomes ?? {}).map(([k, n]) => (
                <Badge key={k} value={k} label={String(n)} />
              ))}
            </dd>
            <dt>Latest run</dt>
            <dd>{c.latest_run_id ? <Link href={`/runs/${c.latest_run_id}`} class="mono">{c.latest_run_id}</Link> : "—"}</dd>
            {binding && (
              <>
                <BindingFacts who="Owner" b={binding.owner} />
                <BindingFacts who="Assigned" b={binding.assigned} />
                <dt>Role authority</dt>
                <dd>{binding.authority ?? "—"}</dd>
              </>
            )}
            <dt>Case updated</dt>
            <dd>
              <Time iso={c.updated_at} />
            </dd>
          </dl>
          <h2>Runs</h2>
          <DataTable<CaseRun>
            caption="The workflow's runs, newest first"
            rows={[...(c.runs ?? [])].reverse()}
            rowKey={(r) => r.run_id}
            columns={[
              { title: "Run", cell: (r) => <Link href={`/runs/${r.run_id}`} class="mono">{r.run_id}</Link> },
              { title: "Task", cell: (r) => r.task_id ?? "—" },
              { title: "Outcome", cell: outcome },
              { title: "Why", cell: (r) => <span class="small">{r.reason ?? "—"}</span> },
              { title: "Runner", cell: (r) => r.runner ?? "—" },
              { title: "Pack", cell: (r) => r.pack ?? "—" },
              {
                title: "Link",
                cell: (r) =>
                  r.chain?.run_id ? (
                    <>
                      step <code>{r.chain.step_id}</code> of <Link href={`/chains/${r.chain.run_id}`} class="mono">{r.chain.run_id}</Link>
                    </>
                  ) : r.replay_of ? (
                    <>replay of <Link href={`/runs/${r.replay_of}`} class="mono">{r.replay_of}</Link></>
                  ) : (
                    "—"
                  ),
              },
              { title: "Started", cell: (r) => <Time iso={r.created_at} /> },
              { title: "Ended", cell: (r) => <Time iso={r.finished_at} /> },
            ]}
          />
        </>
      )}
      {waiting.length > 0 && (
        <>
          <h2>Queued</h2>
          <DataTable
            caption="Items of this workflow waiting in the queue, in run order"
            rows={waiting}
            rowKey={(it) => it.item_id}
            columns={[
              { title: "Item", cell: (it) => <Link href={`/queue?item=${it.item_id}`} class="mono">{it.item_id}</Link> },
              { title: "Task", cell: (it) => it.task_id ?? "—" },
              { title: "Priority", num: true, cell: (it) => it.priority },
              { title: "Eligible", cell: (it) => (it.eligible ? <Badge value="eligible" /> : <><Badge value="waiting" /> <span class="small">{it.waiting_on}</span></>) },
            ]}
          />
        </>
      )}
    </Page>
  );
}
