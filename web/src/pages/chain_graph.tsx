// A chain drawn as its steps in order, boxes joined by arrows (CSS only): each task step with its role,
// verdict and run; each review step with its reviewers' votes against the quorum; each handoff on the arrow
// between the steps it joins (who hands to whom, the summary, the risks, the context for the next role).
import { Link } from "wouter-preact";
import { Badge } from "../components/badge";

export type ChainStep = { step_id: string; kind: string; role?: string; run_ids?: string[]; verdict?: string; reason?: string };
export type Handoff = {
  step_id: string;
  from_role?: string;
  to_role?: string;
  summary?: string;
  risks?: string[];
  next_role_context?: string;
  previous_run_id?: string;
};
export type Vote = { reviewer?: number; run_id?: string; verdict?: string; approve?: boolean };
export type Quorum = { step_id: string; required?: number; reviewers?: number; approvals?: number; met?: boolean; votes?: Vote[] };
// A step of the chain's own file (its contract.json), for steps the chain never reached.
export type PlannedStep = { step_id: string; kind: string; role?: string; from_role?: string; to_role?: string; summary?: string; risks?: string[]; next_role_context?: string; reviewers?: string[]; quorum?: number };

export type Node = { kind: "step"; step: ChainStep; quorum?: Quorum; reached: boolean } | { kind: "handoff"; handoff: Handoff; reached: boolean };

// The steps and handoffs in chain order. The chain file gives the order; the report says what happened. Without
// the file, a handoff follows the step whose run it names (previous_run_id).
export function chainNodes(report: { steps?: ChainStep[]; handoffs?: Handoff[]; quorum?: Quorum[] }, planned?: PlannedStep[]): Node[] {
  const ran = new Map((report.steps ?? []).map((s) => [s.step_id, s]));
  const handed = new Map((report.handoffs ?? []).map((h) => [h.step_id, h]));
  const quorum = new Map((report.quorum ?? []).map((q) => [q.step_id, q]));
  if (planned && planned.length) {
    return planned.map((p): Node => {
      if (p.kind === "handoff") {
        const h = handed.get(p.step_id);
        return { kind: "handoff", handoff: h ?? { ...p }, reached: !!h };
      }
      const s = ran.get(p.step_id);
      return { kind: "step", step: s ?? { step_id: p.step_id, kind: p.kind, role: p.role }, quorum: quorum.get(p.step_id), reached: !!s };
    });
  }
  const nodes: Node[] = [];
  const placed = new Set<string>();
  for (const s of report.steps ?? []) {
    nodes.push({ kind: "step", step: s, quorum: quorum.get(s.step_id), reached: true });
    for (const h of report.handoffs ?? [])
      if (h.previous_run_id && (s.run_ids ?? []).includes(h.previous_run_id) && !placed.has(h.step_id)) {
        placed.add(h.step_id);
        nodes.push({ kind: "handoff", handoff: h, reached: true });
      }
  }
  for (const h of report.handoffs ?? []) if (!placed.has(h.step_id)) nodes.push({ kind: "handoff", handoff: h, reached: true });
  return nodes;
}

function Votes({ q }: { q: Quorum }) {
  return (
    <div class="votes">
      <p class="small">
        <strong>
          {q.approvals ?? 0} of {q.reviewers ?? q.votes?.length ?? "?"}
        </strong>{" "}
        approved, {q.required ?? "?"} needed: <Badge value={q.met ? "pass" : "fail"} label="quorum" />
      </p>
      <ul class="plain">
        {(q.votes ?? []).map((v, i) => (
          <li key={i} data-testid="vote">
            <Badge value={v.approve ? "approved" : "rejected"} label={`reviewer ${v.reviewer ?? i + 1}`} />{" "}
            {v.run_id && (
              <Link href={`/runs/${v.run_id}`} class="mono small">
                {v.run_id}
              </Link>
            )}
          </li>
        ))}
      </ul>
    </div>
  );
}

export function ChainGraph({ nodes }: { nodes: Node[] }) {
  return (
    <ol class="chain-graph" aria-label="The chain's steps in order">
      {nodes.map((n) =>
        n.kind === "step" ? (
          <li key={n.step.step_id} class={"chain-step" + (n.reached ? "" : " not-reached")} data-testid="chain-step">
            <div class="spread">
              <strong>{n.step.role ?? "—"}</strong>
              {n.reached ? <Badge value={n.step.verdict} /> : <Badge value="not reached" />}
            </div>
            <div class="small muted">
              {n.step.kind === "review" ? "review" : "task"} <code>{n.step.step_id}</code>
            </div>
            {n.step.reason && n.step.verdict !== "success" && <div class="small">{n.step.reason}</div>}
            {n.step.kind !== "review" &&
              (n.step.run_ids ?? []).map((r) => (
                <div key={r}>
                  <Link href={`/runs/${r}`} class="mono small">
                    {r}
                  </Link>
                </div>
              ))}
            {n.quorum && <Votes q={n.quorum} />}
          </li>
        ) : (
          <li key={n.handoff.step_id} class={"chain-handoff" + (n.reached ? "" : " not-reached")} data-testid="chain-handoff">
            <span class="arrow" aria-hidden="true" />
            <div class="handoff-body">
              <div class="small">
                <strong>handoff</strong> {n.handoff.from_role} → {n.handoff.to_role}
                {!n.reached && <span class="muted"> (not reached)</span>}
              </div>
              {n.handoff.summary && <div class="small">{n.handoff.summary}</div>}
              {n.handoff.risks && n.handoff.risks.length > 0 && <div class="small">Risks: {n.handoff.risks.join("; ")}</div>}
              {n.handoff.next_role_context && <div class="small muted">For {n.handoff.to_role}: {n.handoff.next_role_context}</div>}
            </div>
          </li>
        ),
      )}
    </ol>
  );
}
