// The command tower: the whole system at a glance (runs, throughput, queue, approvals, disk) and the
// alerts that hold, both kept current from the live event stream.
import { useRef } from "preact/hooks";
import { Link } from "wouter-preact";
import { api, ok, type Schemas } from "../api/client";
import { useLive } from "../api/live";
import { useApi } from "../api/use_api";
import { Badge } from "../components/badge";
import { DataTable } from "../components/data_table";
import { ErrorPanel } from "../components/error_panel";
import { Loading, Page } from "../components/page";
import { Time, duration } from "../components/time";

type Alert = Schemas["Alert"];

function Card({ n, label, testid }: { n: number | string | null | undefined; label: string; testid?: string }) {
  return (
    <div class="card" data-testid={testid}>
      <div class="n">{n ?? "—"}</div>
      <div class="l">{label}</div>
    </div>
  );
}

const pct = (r: number | null | undefined) => (r == null ? "—" : `${Math.round(r * 100)}%`);

// The UI page for an alert's API link (/api/runs/X → /runs/X), or none.
function pageOf(link: string): string | null {
  const m = link.match(/^\/api\/(runs|queue|workflows|locks)(\/[^?]*)?/);
  if (!m) return null;
  return m[1] === "runs" ? "/runs" + (m[2] ?? "") : "/" + m[1];
}

export function TowerPage() {
  const overview = useApi(() => ok(api.GET("/api/command-tower/overview")), []);
  const alerts = useApi(() => ok(api.GET("/api/command-tower/alerts")), []);
  const pending = useRef<number>();
  const live = useLive("/api/events/stream", () => {
    // Many events can arrive at once: refresh at most once a second.
    if (pending.current) return;
    pending.current = window.setTimeout(() => {
      pending.current = undefined;
      overview.reload();
      alerts.reload();
    }, 1000);
  });
  const o = overview.data;
  return (
    <Page title="Command tower" actions={<span class="small muted">{live ? "Live" : "Not live (reconnecting)"}</span>}>
      {overview.error && <ErrorPanel error={overview.error} what="load the overview" />}
      {!o && !overview.error && <Loading what="the overview" />}
      {o && (
        <>
          <h2>Runs</h2>
          <div class="cards">
            <Card n={o.runs.total} label="runs in all" testid="runs-total" />
            <Card n={o.runs.live} label="live now" testid="runs-live" />
            <Card n={o.approvals.awaiting} label="awaiting approval" />
            <Card n={o.queue.depth} label="queued" />
            <Card n={o.queue.sla?.at_risk} label="SLA at risk" />
            <Card n={o.queue.sla?.breached} label="SLA breached" />
            <Card n={`${o.throughput.last_hour?.finished ?? 0} · ${pct(o.throughput.last_hour?.success_rate)}`} label="finished last hour · success" />
            <Card n={`${o.throughput.last_day?.finished ?? 0} · ${pct(o.throughput.last_day?.success_rate)}`} label="finished last day · success" />
            <Card n={o.duration_ms.p50 == null ? null : duration(o.duration_ms.p50 / 1000)} label="median duration" />
            <Card n={o.duration_ms.p95 == null ? null : duration(o.duration_ms.p95 / 1000)} label="95th percentile duration" />
          </div>
          <div class="row small">
            {Object.entries(o.runs.by_verdict ?? {}).map(([v, n]) => (
              <Link key={v} href={`/runs?verdict=${encodeURIComponent(v)}`}>
                <Badge value={v} label={String(n)} />
              </Link>
            ))}
          </div>
          <h2>Failing gates</h2>
          <DataTable
            caption="The gates that fail most"
            rows={o.top_failing_gates}
            rowKey={(g) => g.gate_id ?? ""}
            empty="No gate has failed."
            columns={[
              { title: "Gate", cell: (g) => <code>{g.gate_id}</code> },
              { title: "Failures", num: true, cell: (g) => `${g.failures} of ${g.results}` },
              { title: "Rate", num: true, cell: (g) => pct(g.failure_rate) },
              { title: "Last failed run", cell: (g) => (g.last_failed_run ? <Link href={`/runs/${g.last_failed_run}`}>{g.last_failed_run}</Link> : "—") },
              { title: "When", cell: (g) => <Time iso={g.last_failure_at} /> },
            ]}
          />
          <h2>Disk</h2>
          {o.disk.error && <p class="error">{o.disk.error}</p>}
          <DataTable
            caption={`Capped retention lanes (measured ${o.disk.as_of ?? "not yet"})`}
            rows={o.disk.lanes ?? []}
            rowKey={(l) => l.lane ?? ""}
            empty="No lane has a cap."
            columns={[
              { title: "Lane", cell: (l) => l.lane },
              { title: "Size", num: true, cell: (l) => `${((l.bytes ?? 0) / 1048576).toFixed(1)} MiB` },
              { title: "Cap", num: true, cell: (l) => `${((l.cap_bytes ?? 0) / 1048576).toFixed(1)} MiB` },
              { title: "State", cell: (l) => <Badge value={l.over ? "breached" : "ok"} label={l.over ? "over cap" : undefined} /> },
            ]}
          />
        </>
      )}
      <h2>Alerts</h2>
      {alerts.error && <ErrorPanel error={alerts.error} what="load the alerts" />}
      {alerts.data && (
        <DataTable<Alert>
          caption={`${alerts.data.count} alert(s) hold`}
          rows={alerts.data.alerts}
          rowKey={(a) => a.id}
          empty="No alert holds."
          columns={[
            { title: "Severity", cell: (a) => <Badge value={a.severity} /> },
            { title: "Rule", cell: (a) => <code>{a.rule}</code> },
            { title: "What", cell: (a) => a.message },
            { title: "Since", cell: (a) => <Time iso={a.since} /> },
            { title: "See", cell: (a) => { const p = pageOf(a.link); return p ? <Link href={p}>open</Link> : <code>{a.link}</code>; } },
          ]}
        />
      )}
    </Page>
  );
}
