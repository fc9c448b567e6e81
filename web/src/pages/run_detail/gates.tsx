// The gates the run's pack asked for (the manifest's list), each with its verdict and, opened, its report
// (GET /api/runs/{id}/reports gave them all parsed): the diagnostics, what to do next, and the raw JSON
// (GET /api/runs/{id}/reports/{name}).
import { Badge } from "../../components/badge";
import type { GateReport, ManifestGate } from "./types";

function reportName(g: ManifestGate): string {
  const m = g.report?.match(/^reports\/(.+)\.json$/);
  return m ? m[1] : `gate_${g.gate_id}`;
}

export function Gates({ runId, gates, reports }: { runId: string; gates: ManifestGate[]; reports: Record<string, unknown> }) {
  if (!gates.length) return <p class="muted">No gate has been run yet.</p>;
  return (
    <ul class="gates" data-testid="gates">
      {gates.map((g) => {
        const name = reportName(g);
        const r = reports[name] as GateReport | undefined;
        return (
          <li key={g.gate_id} class="panel">
            <details>
              <summary>
                <Badge value={g.verdict} /> <strong class="mono">{g.gate_id}</strong>
                {g.required === false && <span class="small muted"> (advisory)</span>}{" "}
                <span class="small">{g.summary ?? r?.summary ?? ""}</span>
              </summary>
              <GateReportView runId={runId} name={name} report={r} />
            </details>
          </li>
        );
      })}
    </ul>
  );
}

function GateReportView({ runId, name, report }: { runId: string; name: string; report?: GateReport }) {
  const raw = `/api/runs/${encodeURIComponent(runId)}/reports/${encodeURIComponent(name)}`;
  if (!report) return <p class="small muted">The report <code>{name}</code> is not in the bundle (yet).</p>;
  const diags = Array.isArray(report.diagnostics) ? report.diagnostics : [];
  return (
    <div class="small">
      {report.next_action && (
        <p>
          <strong>Next:</strong> {report.next_action}
        </p>
      )}
      {diags.length > 0 ? (
        <ul>
          {diags.map((d, i) => (
            <li key={i}>
              <Badge value={d.severity ?? "info"} /> {d.message}
              {d.path && (
                <>
                  {" "}
                  at <code>{d.path}</code>
                </>
              )}
              {d.rule && <span class="muted"> ({d.rule})</span>}
            </li>
          ))}
        </ul>
      ) : (
        <p class="muted">No diagnostics.</p>
      )}
      {report.details && <pre class="block" tabIndex={0}>{JSON.stringify(report.details, null, 2)}</pre>}
      <p>
        {report.isolation && <span class="muted">Ran {report.isolation.replace(/_/g, " ")}. </span>}
        <a href={raw} target="_blank" rel="noopener">
          Report {name} as JSON
        </a>
      </p>
    </div>
  );
}
