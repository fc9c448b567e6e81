// A chain drawn as its steps in the chain file's order, boxes joined by arrows (CSS only): each task step
// with its role, state, verdict and run; each review step with its reviewers' runs and votes against the
// quorum; each handoff written beside the arrow between the steps it joins (who hands to whom, the summary,
// the risks, the context for the next role). Steps the chain has not reached are drawn dashed.
import { Link } from "wouter-preact";
import type { Schemas } from "../api/client";
import { Badge } from "../components/badge";

type Step = Schemas["ChainStep"];
type StepRun = Schemas["ChainStepRun"];
type Handoff = Schemas["ChainHandoff"];
type Vote = { reviewer?: number; run_id?: string; verdict?: string; approve?: boolean };
type Quorum = { required?: number; reviewers?: number; approvals?: number; met?: boolean; votes?: Vote[] };

const reached = (s: Step) => s.state !== "pending" && s.state !== "not_run";

function RunLine({ r }: { r: StepRun }) {
  return (
    <li>
      {r.reviewer !== undefined && <span class="small">reviewer {r.reviewer}: </span>}
      {r.approve !== undefined && <Badge value={r.approve ? "approved" : "rejected"} label="vote" />}{" "}
      {r.run_id ? (
        <Link href={`/runs/${r.run_id}`} class="mono small">
          {r.run_id}
        </Link>
      ) : (
        <span class="muted small">no run</span>
      )}{" "}
      <Badge value={r.verdict ?? r.status} />
    </li>
  );
}

function QuorumLine({ q }: { q: Quorum }) {
  return (
    <p class="small" data-testid="quorum">
      <strong>
        {q.approvals ?? 0} of {q.reviewers ?? q.votes?.length ?? "?"} approved
      </strong>
      , {q.required ?? "?"} needed: <Badge value={q.met ? "pass" : "fail"} label="quorum" />
    </p>
  );
}

function HandoffBody({ h, done }: { h: Handoff; done: boolean }) {
  return (
    <div class="handoff-body">
      <div class="small">
        <strong>handoff</strong> {h.from_role} → {h.to_role}
        {!done && <span class="muted"> (not reached)</span>}
      </div>
      {h.summary && <div class="small">{h.summary}</div>}
      {h.risks && h.risks.length > 0 && <div class="small">Risks: {h.risks.join("; ")}</div>}
      {h.next_role_context && (
        <div class="small muted">
          For {h.to_role}: {h.next_role_context}
        </div>
      )}
    </div>
  );
}

export function ChainGraph({ steps }: { steps: Step[] }) {
  return (
    <ol class="chain-graph" aria-label="The chain's steps in order">
      {steps.map((s) => {
        if (s.kind === "handoff") {
          const done = !!s.handoff?.previous_run_id || s.state === "done";
          return (
            <li key={s.step_id} class={"chain-handoff" + (done ? "" : " not-reached")} data-testid="chain-handoff">
              <span class="arrow" aria-hidden="true" />
              <HandoffBody h={s.handoff ?? {}} done={done} />
            </li>
          );
        }
        const runs = s.runs ?? [];
        return (
          <li key={s.step_id} class={"chain-step" + (reached(s) ? "" : " not-reached")} data-testid="chain-step">
            <div class="spread">
              <strong>{s.role}</strong>
              <span class="row">
                {s.state !== "done" && <Badge value={s.state === "not_run" ? "not run" : s.state} />}
                {s.verdict && <Badge value={s.verdict} />}
              </span>
            </div>
            <div class="small muted">
              {s.kind} <code>{s.step_id}</code>
              {s.commit && (
                <>
                  {" "}
                  · commit <code>{s.commit.slice(0, 12)}</code>
                </>
              )}
            </div>
            {s.reason && s.verdict !== "success" && <div class="small">{s.reason}</div>}
            {runs.length > 0 && (
              <ul class="plain">
                {runs.map((r, i) => (
                  <RunLine key={r.run_id ?? i} r={r} />
                ))}
              </ul>
            )}
            {s.quorum && <QuorumLine q={s.quorum as Quorum} />}
          </li>
        );
      })}
    </ol>
  );
}
