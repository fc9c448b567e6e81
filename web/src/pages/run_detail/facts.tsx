// The run at a glance: its verdict and why, its status, what it ran (task, runner, pack, workflow), when,
// whether its bundle verifies, and the runs it is linked to (the chain it is a step of, the run it replays).
import { Fragment } from "preact";
import { Link } from "wouter-preact";
import { Badge } from "../../components/badge";
import { Time, duration } from "../../components/time";
import { runHref, type Manifest } from "./types";

export type Verification = { state?: string; ok?: boolean; problems?: string[]; key_id?: string };

const q = (k: string, v: string) => `/runs?${k}=${encodeURIComponent(v)}`;

// Whether what the bundle's files say may be shown as what the host sealed: only when the API verified the
// bundle against its seal. A sealed run that does not verify (or whose check is missing) and a run found
// tampered say what their files claim, never as a verdict or a proof.
export function trusted(m: Manifest, verification?: Verification): boolean {
  if (verification?.state === "tampered") return false;
  return m.status !== "sealed" || verification?.state === "intact";
}

export function Verdict({ m, verification }: { m: Manifest; verification?: Verification }) {
  const sealed = m.status === "sealed";
  const ok = trusted(m, verification);
  return (
    <div class={"verdict panel " + (ok && m.verdict === "success" ? "ok" : m.verdict || !ok ? "bad" : "")} data-testid="verdict">
      {!ok && (
        <p class="error" role="alert" data-testid="untrusted">
          <strong>This run's bundle does not verify</strong> ({verification?.state ?? "not checked"}): what follows is what
          its files say now, not what the host sealed. Do not act on it; <code>cp-host runs verify {m.run_id}</code> says
          what changed.
        </p>
      )}
      <p class="big">
        {!sealed ? (
          <Badge value={m.status} label="Status" />
        ) : ok ? (
          <Badge value={m.verdict} label="Verdict" />
        ) : (
          <span class="badge">Claimed verdict: {m.verdict ?? "—"}</span>
        )}{" "}
        {sealed && (ok ? <Badge value={m.status} /> : <span class="badge">{m.status}</span>)}
      </p>
      <p>{m.reason ?? (sealed ? "" : "No verdict yet: the run has not been sealed.")}</p>
    </div>
  );
}

export function Facts({ m, verification }: { m: Manifest; verification?: Verification }) {
  return (
    <dl class="facts" data-testid="facts">
      <dt>Status</dt>
      <dd>
        <Badge value={m.status} />
      </dd>
      <dt>Task</dt>
      <dd>{m.task_id ? <Link href={q("q", m.task_id)}>{m.task_id}</Link> : "—"}</dd>
      <dt>Runner</dt>
      <dd>{m.runner ? <Link href={q("runner", m.runner)}>{m.runner}</Link> : "—"}</dd>
      <dt>Pack</dt>
      <dd>{m.pack ? <Link href={q("pack", m.pack)}>{m.pack}</Link> : "—"}</dd>
      <dt>Workflow</dt>
      <dd>{m.workflow_id ? <Link href={`/workflows/${encodeURIComponent(m.workflow_id)}`}>{m.workflow_id}</Link> : "—"}</dd>
      {m.queue?.item_id && (
        <>
          <dt>Queue item</dt>
          <dd>
            <Link href="/queue" class="mono">
              {m.queue.item_id}
            </Link>{" "}
            (attempt {m.queue.attempt ?? 1})
          </dd>
        </>
      )}
      <dt>Created</dt>
      <dd>
        <Time iso={m.created_at} />
      </dd>
      <dt>Started</dt>
      <dd>
        <Time iso={m.started_at} />
      </dd>
      <dt>Finished</dt>
      <dd>
        <Time iso={m.finished_at} />
        {m.duration_ms !== undefined && <> (took {duration(m.duration_ms / 1000)})</>}
      </dd>
      <dt>Baseline</dt>
      <dd class="mono">
        {m.baseline_commit?.slice(0, 12) ?? "—"}
        {m.baseline_ref && <span class="muted"> ({m.baseline_ref})</span>}
      </dd>
      <dt>Bundle</dt>
      <dd>
        <span class={"badge " + (verification?.state === "intact" ? "ok" : verification?.state === "tampered" ? "bad" : "info")}>
          {verification?.state ?? "unknown"}
        </span>
        {verification?.problems?.length ? <span class="small"> {verification.problems.join("; ")}</span> : null}
      </dd>
      <Links m={m} />
    </dl>
  );
}

function Links({ m }: { m: Manifest }) {
  const rows: [string, string, string][] = [];
  if (m.chain?.run_id) rows.push(["Chain", m.chain.run_id, `step ${m.chain.step_id ?? "?"}${m.chain.role ? ` (${m.chain.role})` : ""}`]);
  if (m.replay_of) rows.push(["Replay of", m.replay_of, ""]);
  if (m.from_run) rows.push(["Ran again from", m.from_run, ""]);
  if (m.resumed_from) rows.push(["Resumed from", m.resumed_from, ""]);
  return (
    <>
      {rows.map(([label, id, note]) => (
        <Fragment key={label}>
          <dt>{label}</dt>
          <dd>
            <Link href={runHref(id)} class="mono">
              {id}
            </Link>
            {note && <span class="muted"> {note}</span>}
            {label === "Chain" && (
              <>
                {" · "}
                <Link href={`/chains/${encodeURIComponent(id)}`}>step graph</Link>
              </>
            )}
            {label !== "Chain" && (
              <>
                {" · "}
                <Link href={`${runHref(m.run_id ?? "")}/compare/${encodeURIComponent(id)}`}>compare</Link>
              </>
            )}
          </dd>
        </Fragment>
      ))}
      {m.kind === "chain" && (m.chain_steps?.length ?? 0) > 0 && (
        <>
          <dt>Steps</dt>
          <dd>
            {m.chain_steps!.map((s, i) => (
              <span key={i}>
                {i > 0 && " → "}
                {s.run_id ? <Link href={runHref(s.run_id)}>{s.step_id ?? s.run_id}</Link> : s.step_id}
                {s.verdict && <> <Badge value={s.verdict} /></>}
              </span>
            ))}
          </dd>
        </>
      )}
    </>
  );
}

// What was decided about the run after it ran: the approval, its change's promotion, a rollback.
export function Decisions({ m }: { m: Manifest }) {
  const a = m.approval;
  const e = m.evidence;
  const r = m.rollback;
  if (!a && !e && !r) return null;
  return (
    <ul class="small decisions">
      {a && (
        <li>
          Approval: <Badge value={a.state} />
          {a.decision?.by && (
            <>
              {" "}
              by {a.decision.by} ({a.decision.how?.replace(/_/g, " ")}) <Time iso={a.decision.at} />
              {a.decision.reason && <>: “{a.decision.reason}”</>}
            </>
          )}
        </li>
      )}
      {e && (
        <li>
          Change: <Badge value={e.decision} /> by {e.by} <Time iso={e.at} />
          {e.branch && (
            <>
              {" "}
              onto <code>{e.branch}</code>
            </>
          )}
          {e.commit && <span class="mono"> as {e.commit.slice(0, 12)}</span>}
        </li>
      )}
      {r && (
        <li>
          Rolled back ({r.action?.replace(/_/g, " ")}) by {r.by} <Time iso={r.at} />: “{r.reason}”
        </li>
      )}
    </ul>
  );
}
