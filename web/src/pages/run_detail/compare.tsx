// Two runs side by side (GET /api/runs/{id}/compare/{other}, the run_compare_report the API computes and does
// not store): verdicts, gate outcomes, changed files, diff sizes, usage and how many events of each type.
// Rows that differ are marked "differs" in words, not only by colour.
import { useState } from "preact/hooks";
import { Link, useLocation } from "wouter-preact";
import { api, ok } from "../../api/client";
import { useApi } from "../../api/use_api";
import { ErrorPanel } from "../../components/error_panel";
import { Loading, Page } from "../../components/page";
import { duration } from "../../components/time";
import { num, runHref, str } from "./types";

type Side = Record<string, unknown>;
type Row = { what: string; a: unknown; b: unknown; same?: boolean };

const obj = (v: unknown): Side => (v && typeof v === "object" && !Array.isArray(v) ? (v as Side) : {});
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const show = (v: unknown) => (v === undefined || v === null || v === "" ? "—" : typeof v === "object" ? JSON.stringify(v) : String(v));

function Table({ caption, rows }: { caption: string; rows: Row[] }) {
  return (
    <div class="table-wrap" tabIndex={0} role="region" aria-label={caption}>
      <table class="compare">
        <caption>{caption}</caption>
        <thead>
          <tr>
            <th scope="col">What</th>
            <th scope="col">A</th>
            <th scope="col">B</th>
            <th scope="col">Same?</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => {
            const same = r.same ?? show(r.a) === show(r.b);
            return (
              <tr key={r.what} class={same ? "" : "differs"}>
                <th scope="row">{r.what}</th>
                <td>{show(r.a)}</td>
                <td>{show(r.b)}</td>
                <td>{same ? "same" : <strong>differs</strong>}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

export function RunComparePage({ params }: { params: { id: string; other: string } }) {
  const { id, other } = params;
  const report = useApi(() => ok(api.GET("/api/runs/{id}/compare/{other}", { params: { path: { id, other } } })), [id, other]);
  const r = obj(report.data);
  const a = obj(r.a);
  const b = obj(r.b);
  const ms = (v: unknown) => (num(v) === undefined ? undefined : duration(num(v)! / 1000));
  const files = obj(r.changed_files);
  const stats = obj(r.diff_stats);
  const sa = obj(stats.a);
  const sb = obj(stats.b);
  const ua = obj(obj(r.usage).a);
  const ub = obj(obj(r.usage).b);
  const usageKeys = Array.from(new Set([...Object.keys(ua), ...Object.keys(ub)]));
  return (
    <Page title={`Compare ${id} with ${other}`} actions={<Link href={runHref(id)}>Back to run A</Link>}>
      {report.error && <ErrorPanel error={report.error} what="compare the runs" />}
      {!report.data && !report.error && <Loading what="the comparison" />}
      {report.data && (
        <div data-testid="compare">
          <p>
            A: <Link href={runHref(id)} class="mono">{id}</Link> · B: <Link href={runHref(other)} class="mono">{other}</Link>
            {r.replay === true && " · B replays A"}
            {" · "}
            {r.same_contract ? "same contract" : <strong>different contracts</strong>}
          </p>
          <Table
            caption="The runs"
            rows={[
              { what: "Verdict", a: obj(r.verdict).a, b: obj(r.verdict).b, same: obj(r.verdict).same === true },
              { what: "Status", a: a.status, b: b.status },
              { what: "Reason", a: a.reason, b: b.reason },
              { what: "Task", a: a.task_id, b: b.task_id },
              { what: "Runner", a: a.runner, b: b.runner },
              { what: "Contract sha256", a: str(a.contract_sha256)?.slice(0, 16), b: str(b.contract_sha256)?.slice(0, 16) },
              { what: "Baseline", a: str(a.baseline_commit)?.slice(0, 12), b: str(b.baseline_commit)?.slice(0, 12) },
              { what: "Took", a: ms(a.duration_ms), b: ms(b.duration_ms), same: true },
            ]}
          />
          <h2>Gates</h2>
          <Table
            caption="Each gate's verdict in A and B"
            rows={arr(r.gates).map((g) => {
              const o = obj(g);
              return { what: str(o.gate_id) ?? "?", a: o.a, b: o.b, same: o.same === true };
            })}
          />
          <h2>Change</h2>
          <Table
            caption="Files changed and the size of each patch"
            rows={[
              { what: "Files changed", a: files.a, b: files.b },
              { what: "Lines added", a: sa.insertions, b: sb.insertions },
              { what: "Lines removed", a: sa.deletions, b: sb.deletions },
              { what: "Patch", a: str(sa.patch_sha256)?.slice(0, 16), b: str(sb.patch_sha256)?.slice(0, 16), same: stats.same_patch === true },
            ]}
          />
          <FileSets only_a={arr(files.only_a)} only_b={arr(files.only_b)} both={arr(files.both)} />
          <h2>Usage</h2>
          {usageKeys.length ? (
            <Table caption="What each run used" rows={usageKeys.map((k) => ({ what: k.replace(/_/g, " "), a: ua[k], b: ub[k] }))} />
          ) : (
            <p class="muted">Neither run recorded usage.</p>
          )}
          <h2>Events</h2>
          <Table
            caption="How many events of each type"
            rows={arr(r.event_types).map((t) => {
              const o = obj(t);
              return { what: str(o.type) ?? "?", a: o.a, b: o.b };
            })}
          />
        </div>
      )}
    </Page>
  );
}

function FileSets({ only_a, only_b, both }: { only_a: unknown[]; only_b: unknown[]; both: unknown[] }) {
  const item = (f: unknown) => (typeof f === "string" ? f : str(obj(f).path) ?? JSON.stringify(f));
  const group = (title: string, files: unknown[]) =>
    files.length > 0 && (
      <p class="small">
        {title}:{" "}
        {files.map((f, i) => (
          <code key={i}>
            {i > 0 && ", "}
            {item(f)}
          </code>
        ))}
      </p>
    );
  return (
    <>
      {group("Changed by both", both)}
      {group("Only in A", only_a)}
      {group("Only in B", only_b)}
    </>
  );
}

// The field on a run's page that opens the comparison with another run.
export function CompareForm({ runId, suggest }: { runId: string; suggest?: string }) {
  const [other, setOther] = useState(suggest ?? "");
  const [, navigate] = useLocation();
  return (
    <form
      class="row"
      role="search"
      aria-label="Compare with another run"
      onSubmit={(e) => {
        e.preventDefault();
        const o = other.trim();
        if (o) navigate(`${runHref(runId)}/compare/${encodeURIComponent(o)}`);
      }}
    >
      <label>
        Other run id
        <input name="other" value={other} size={36} required onInput={(e) => setOther((e.target as HTMLInputElement).value)} />
      </label>
      <button type="submit">Compare</button>
    </form>
  );
}
