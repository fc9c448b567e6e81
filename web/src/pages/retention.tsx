// Retention: the plan by lane (what each lane would delete and why, what it keeps and why), and for an
// admin, applying it: only the candidates shown here go (re-checked by the server), and the page shows
// what was removed and what was skipped.
import { useState } from "preact/hooks";
import { api, ok, type Schemas } from "../api/client";
import { can } from "../api/roles";
import { useSession } from "../api/session";
import { useApi } from "../api/use_api";
import { ActionButton } from "../components/action_button";
import { Badge } from "../components/badge";
import { DataTable } from "../components/data_table";
import { ErrorPanel } from "../components/error_panel";
import { Loading, Page } from "../components/page";
import { Time } from "../components/time";

type Report = Schemas["RetentionReport"];
type Lane = Schemas["RetentionLane"];
type Entry = { path?: string; bytes?: number; reason?: string };

function bytes(n: number | null | undefined): string {
  if (n == null) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n, u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(1)} ${units[u]}`;
}

const laneId = (name: string) => "lane-" + name.replace(/[^a-z0-9_-]/gi, "_");

function EntryTable({ caption, rows, empty, what }: { caption: string; rows: Entry[]; empty: string; what: string }) {
  return (
    <DataTable<Entry>
      caption={caption}
      rows={rows}
      rowKey={(e) => e.path ?? ""}
      empty={empty}
      columns={[
        { title: "Path", cell: (e) => <code>{e.path}</code> },
        { title: "Size", num: true, cell: (e) => bytes(e.bytes) },
        { title: what, cell: (e) => e.reason ?? "—" },
      ]}
    />
  );
}

function LanePlan({ name, lane }: { name: string; lane: Lane }) {
  const held = (lane.held ?? []) as Entry[];
  return (
    <section aria-labelledby={laneId(name)} class="panel" data-testid={`lane-${name}`}>
      <h3 id={laneId(name)}>
        {name}{" "}
        {lane.enabled === false ? (
          <Badge value="disabled" />
        ) : lane.candidates.length ? (
          <span class="badge warn">{lane.candidates.length} to delete</span>
        ) : (
          <span class="badge ok">nothing to delete</span>
        )}{" "}
        {lane.over_cap_after_plan && <span class="badge bad">over its cap after the plan</span>}
      </h3>
      <p class="small muted">
        <code>{lane.lane_root}</code> · {lane.entries ?? 0} entries, {bytes(lane.bytes)} · plugin <code>{lane.plugin}</code>
      </p>
      {lane.errors.length > 0 && (
        <ul class="error" aria-label={`Errors of ${name}`}>
          {lane.errors.map((e, k) => (
            <li key={k}>
              {e.path ? <code>{e.path}</code> : null} {e.message}
            </li>
          ))}
        </ul>
      )}
      {lane.candidates.length > 0 && (
        <EntryTable
          caption={`Would delete ${lane.candidates.length} (${bytes(lane.candidate_bytes)})`}
          rows={lane.candidates}
          empty="Nothing."
          what="Why"
        />
      )}
      {held.length > 0 && (
        <details>
          <summary>Keeps {held.length} held entr{held.length === 1 ? "y" : "ies"}</summary>
          <EntryTable caption="Kept though old or over the cap" rows={held} empty="None." what="Why it stays" />
        </details>
      )}
    </section>
  );
}

// What an apply removed and what it left, lane by lane.
function Applied({ r }: { r: Report }) {
  const lanes = Object.entries(r.lanes);
  const removed = lanes.flatMap(([lane, l]) => (l.deleted ?? []).map((path) => ({ lane, path })));
  const skipped = lanes.flatMap(([lane, l]) => (l.skipped ?? []).map((s) => ({ lane, ...s })));
  return (
    <div class="notice" role="status" data-testid="retention-applied">
      <p>
        <strong>Applied</strong> <Time iso={r.generated_at} />: {r.totals.deleted} removed, {bytes(r.totals.reclaimed_bytes)}{" "}
        reclaimed{r.totals.errors ? `, ${r.totals.errors} error(s)` : ""}.
      </p>
      {removed.length > 0 && (
        <ul aria-label="Removed">
          {removed.map((x) => (
            <li key={x.lane + x.path}>
              {x.lane}: <code>{x.path}</code>
            </li>
          ))}
        </ul>
      )}
      {skipped.length > 0 && (
        <ul aria-label="Skipped">
          {skipped.map((x) => (
            <li key={x.lane + x.path}>
              {x.lane}: <code>{x.path}</code> skipped: {x.reason}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

export function RetentionPage() {
  const { who } = useSession();
  const plan = useApi(() => ok(api.GET("/api/retention/plan")), []);
  const [applied, setApplied] = useState<Report>();
  const p = plan.data;
  const lanes = p ? Object.entries(p.lanes).sort(([a], [b]) => a.localeCompare(b)) : [];
  // Exactly the candidates this page shows: the server deletes at most these (those still qualifying).
  const chosen = Object.fromEntries(
    lanes.filter(([, l]) => l.candidates.length).map(([name, l]) => [name, l.candidates.map((c) => c.path)]),
  );
  const admin = can(who?.role, "admin");
  return (
    <Page
      title="Retention"
      actions={
        <>
          <button type="button" onClick={plan.reload} disabled={plan.loading}>
            Plan again
          </button>
          {admin && p && p.totals.candidates > 0 && (
            <ActionButton
              label="Apply the plan"
              title={`Delete the ${p.totals.candidates} entries the plan lists (${bytes(p.totals.candidate_bytes)})?`}
              danger
              explain="Each is checked again first (still there, sealed, not live, not used by the queue) and skipped otherwise; nothing the plan does not list is touched. This cannot be undone."
              fields={[{ name: "reason", label: "Reason", placeholder: "why now (recorded)" }]}
              act={async (v) => {
                const r = await ok(
                  api.POST("/api/retention/apply", { body: { paths: chosen, ...(v.reason ? { reason: v.reason } : {}) } }),
                );
                setApplied(r);
                return `${r.totals.deleted} removed`;
              }}
              done={plan.reload}
            />
          )}
        </>
      }
    >
      <p class="muted small">
        What <code>policies/retention_policy.json</code> would remove now, lane by lane. Planning deletes nothing.
        {!admin && who && ` Applying it needs an admin; your role is ${who.role}.`}
      </p>
      {applied && <Applied r={applied} />}
      {plan.error && <ErrorPanel error={plan.error} what="plan retention" />}
      {!p && !plan.error && <Loading what="the retention plan" />}
      {p && (
        <>
          <div class="cards">
            <div class="card">
              <div class="n" data-testid="retention-candidates">{p.totals.candidates}</div>
              <div class="l">entries to delete</div>
            </div>
            <div class="card">
              <div class="n">{bytes(p.totals.candidate_bytes)}</div>
              <div class="l">to reclaim</div>
            </div>
            <div class="card">
              <div class="n">{lanes.length}</div>
              <div class="l">lanes</div>
            </div>
            <div class="card">
              <div class="n">{p.totals.errors}</div>
              <div class="l">errors</div>
            </div>
          </div>
          <p class="small muted">
            Planned <Time iso={p.generated_at} /> in {p.duration_ms ?? 0} ms.
          </p>
          <DataTable<[string, Lane]>
            caption="The plan by lane"
            rows={lanes}
            rowKey={([name]) => name}
            empty="The policy names no lane."
            columns={[
              { title: "Lane", cell: ([name]) => <a href={"#" + laneId(name)}>{name}</a> },
              { title: "Entries", num: true, cell: ([, l]) => l.entries ?? 0 },
              { title: "Size", num: true, cell: ([, l]) => bytes(l.bytes) },
              { title: "To delete", num: true, cell: ([, l]) => l.candidates.length },
              { title: "Reclaims", num: true, cell: ([, l]) => bytes(l.candidate_bytes) },
              { title: "Held", num: true, cell: ([, l]) => (l.held ?? []).length },
              { title: "Errors", num: true, cell: ([, l]) => l.errors.length },
            ]}
          />
          <h2>Lanes</h2>
          {lanes.map(([name, lane]) => (
            <LanePlan key={name} name={name} lane={lane} />
          ))}
        </>
      )}
    </Page>
  );
}
