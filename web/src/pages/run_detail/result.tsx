// What the runner said it did (reports/task_result.json: its commands and their exits) and what the run used
// against the budgets its contract set (tokens, turns, cost, wall time).
import { Badge } from "../../components/badge";
import { DataTable } from "../../components/data_table";
import { duration } from "../../components/time";
import type { Budgets, Manifest, TaskResult, Usage } from "./types";

function Meter({ label, used, max, show }: { label: string; used: number; max?: number; show(n: number): string }) {
  const pct = max ? Math.min(100, Math.round((used / max) * 100)) : undefined;
  return (
    <div class="budget">
      <span>
        {label}: <strong>{show(used)}</strong>
        {max ? ` of ${show(max)} (${pct}%)` : " (no budget set)"}
      </span>
      {max ? <meter min={0} max={max} value={Math.min(used, max)} high={max * 0.8} optimum={0} aria-label={`${label} used`} /> : null}
    </div>
  );
}

export function UsageView({ manifest, budgets, now }: { manifest: Manifest; budgets: Budgets; now: number }) {
  const u: Usage = manifest.usage ?? {};
  const tokens = (u.input_tokens ?? 0) + (u.output_tokens ?? 0);
  const started = manifest.started_at ? Date.parse(manifest.started_at) : NaN;
  const wallMs = manifest.duration_ms ?? (Number.isNaN(started) ? 0 : Math.max(0, now - started));
  const n = (x: number) => x.toLocaleString("en");
  return (
    <div class="budgets" data-testid="usage">
      <Meter label="Tokens" used={tokens} max={budgets.max_tokens} show={n} />
      {u.cached_input_tokens ? <p class="small muted">({n(u.cached_input_tokens)} of the input tokens were cached)</p> : null}
      <Meter label="Turns" used={u.turns ?? 0} max={budgets.max_turns} show={n} />
      {(u.cost_usd !== undefined || budgets.max_cost_usd) && (
        <Meter label="Cost" used={u.cost_usd ?? 0} max={budgets.max_cost_usd} show={(x) => `$${x.toFixed(2)}`} />
      )}
      <Meter label="Wall time" used={wallMs / 1000} max={budgets.wall_time_sec} show={duration} />
    </div>
  );
}

export function TaskResultView({ result }: { result?: TaskResult }) {
  if (!result) return <p class="muted">The runner has not reported yet.</p>;
  return (
    <div data-testid="task-result">
      <p>
        <Badge value={result.status} /> {result.reason}
      </p>
      <DataTable
        caption="Commands the runner ran, in order"
        rows={(result.commands ?? []).map((c, i) => ({ ...c, i }))}
        rowKey={(c) => String(c.i)}
        empty="No command was run."
        columns={[
          { title: "Command", cell: (c) => <code>{c.command}</code> },
          { title: "Outcome", cell: (c) => <Badge value={c.status} /> },
          { title: "Exit", num: true, cell: (c) => (c.exit_code === undefined ? "—" : String(c.exit_code)) },
          { title: "Took", num: true, cell: (c) => (c.duration_ms === undefined ? "—" : duration(c.duration_ms / 1000)) },
        ]}
      />
    </div>
  );
}
