// The approvals inbox: every run awaiting a human decision, oldest request first, with a countdown to its
// deadline (past it the server denies the run by rule), who approved so far against how many are needed,
// what approving would seal (verdict, gates, changed files), and approve / reject for an operator.
import { useEffect, useRef, useState } from "preact/hooks";
import { Link } from "wouter-preact";
import { api, ok, type paths } from "../api/client";
import { useLive } from "../api/live";
import { can } from "../api/roles";
import { useSession } from "../api/session";
import { useApi } from "../api/use_api";
import { ActionButton } from "../components/action_button";
import { Badge } from "../components/badge";
import { ErrorPanel } from "../components/error_panel";
import { Loading, Page } from "../components/page";
import { Time, duration } from "../components/time";

type Awaiting = NonNullable<
  paths["/api/approvals"]["get"]["responses"]["200"]["content"]["application/json"]["approvals"]
>[number] & { workflow_id?: string };
type Approval = { by?: string; by_kind?: string; how?: string; at?: string; reason?: string };
type Gate = { gate_id?: string; verdict?: string; required?: boolean; summary?: string };
type Change = { status?: string; path?: string; old_path?: string };

// The current time, moved on every second while the page shows a countdown.
function useNow(): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = window.setInterval(() => setNow(Date.now()), 1000);
    return () => window.clearInterval(t);
  }, []);
  return now;
}

// How long is left before `deadline`, in words; null when there is no deadline.
export function countdown(deadline: string | undefined, now: number): { text: string; over: boolean; soon: boolean } | null {
  if (!deadline) return null;
  const t = Date.parse(deadline);
  if (Number.isNaN(t)) return null;
  const left = (t - now) / 1000;
  if (left <= 0) return { text: `overdue by ${duration(-left)}: the next look at it denies the run`, over: true, soon: true };
  return { text: `${duration(left)} left`, over: false, soon: left < 15 * 60 };
}

function Deadline({ deadline, now }: { deadline?: string; now: number }) {
  const c = countdown(deadline, now);
  if (!c) return <span class="muted">no deadline</span>;
  return (
    <span class={"countdown" + (c.over ? " over" : c.soon ? " soon" : "")} data-testid="countdown">
      {(c.over || c.soon) && <Badge value={c.over ? "breached" : "at_risk"} label="deadline" />} {c.text}{" "}
      <span class="small muted">
        (<time dateTime={deadline}>{deadline}</time>)
      </span>
    </span>
  );
}

export function ApprovalsPage() {
  const { who } = useSession();
  const operator = can(who?.role, "operator");
  const inbox = useApi(() => ok(api.GET("/api/approvals")), []);
  const now = useNow();
  // The last decision taken here, kept after its run leaves the inbox.
  const [said, setSaid] = useState<{ runId: string; text: string }>();
  const pending = useRef<number>();
  const live = useLive("/api/events/stream", () => {
    if (pending.current) return;
    pending.current = window.setTimeout(() => {
      pending.current = undefined;
      inbox.reload();
    }, 500);
  });

  const list = (inbox.data?.approvals ?? []) as Awaiting[];
  // Buttons are named by task, or by run where two runs share a task, so each is told apart.
  const tasks = new Map<string, number>();
  for (const a of list) tasks.set(a.task_id ?? "", (tasks.get(a.task_id ?? "") ?? 0) + 1);
  const nameOf = (a: Awaiting) => (a.task_id && tasks.get(a.task_id) === 1 ? a.task_id : a.run_id ?? "");

  const decide = (a: Awaiting, how: "approve" | "reject") => async (v: Record<string, string>) => {
    const path = how === "approve" ? "/api/runs/{id}/approve" : "/api/runs/{id}/reject";
    const r = await ok(
      api.POST(path, { params: { path: { id: a.run_id ?? "" } }, body: v.reason ? { reason: v.reason } : {} }),
    );
    const text =
      r.outcome === "recorded"
        ? `Approval of ${a.run_id} recorded; more approvers are needed.`
        : `${a.run_id}: ${r.outcome}, now ${r.status}${r.verdict ? ` (${r.verdict})` : ""}.`;
    setSaid({ runId: a.run_id ?? "", text });
    return text;
  };

  return (
    <Page title="Approvals" actions={<span class="small muted">{live ? "Live" : "Not live (reconnecting)"}</span>}>
      {said && (
        <p class="notice" role="status" data-testid="decision">
          {said.text} <Link href={`/runs/${said.runId}`}>Open the run</Link>
        </p>
      )}
      {inbox.error && <ErrorPanel error={inbox.error} what="load the approvals inbox" />}
      {!inbox.data && !inbox.error && <Loading what="the approvals inbox" />}
      {inbox.data && (
        <p class="muted">
          {list.length === 0
            ? "No run is awaiting a decision."
            : `${list.length} run(s) awaiting a decision, oldest request first.`}
          {!operator && list.length > 0 && " Deciding needs an operator token."}
        </p>
      )}
      <ul class="inbox">
        {list.map((a) => {
          const approvals = (a.approvals ?? []) as Approval[];
          const ap = (a.approval_pack ?? {}) as { verdict_if_approved?: string; reason?: string; gates?: Gate[]; changes?: Change[] };
          const needed = a.approvers_required ?? 1;
          return (
            <li key={a.run_id} class="panel" data-testid="awaiting">
              <div class="spread">
                <h2>
                  <Link href={`/runs/${a.run_id}`} class="mono">
                    {a.run_id}
                  </Link>
                </h2>
                <Deadline deadline={a.deadline} now={now} />
              </div>
              <dl class="facts">
                <dt>Task</dt>
                <dd>{a.task_id}</dd>
                <dt>Pack</dt>
                <dd>{a.pack}</dd>
                {a.workflow_id && (
                  <>
                    <dt>Workflow</dt>
                    <dd>
                      <Link href={`/workflows/${a.workflow_id}`}>{a.workflow_id}</Link>
                    </dd>
                  </>
                )}
                <dt>Asked</dt>
                <dd>
                  <Time iso={a.requested_at} />
                </dd>
                <dt>Approved by</dt>
                <dd data-testid="approved-by">
                  <strong>
                    {approvals.length} of {needed}
                  </strong>{" "}
                  needed
                  {approvals.length > 0 && ": "}
                  {approvals.map((x, i) => (
                    <span key={i}>
                      {i > 0 && ", "}
                      {x.by}
                      {x.how && x.how !== "human" ? ` (${x.how})` : ""} <Time iso={x.at} />
                      {x.reason ? ` — “${x.reason}”` : ""}
                    </span>
                  ))}
                </dd>
                {ap.verdict_if_approved && (
                  <>
                    <dt>If approved</dt>
                    <dd>
                      <Badge value={ap.verdict_if_approved} />
                    </dd>
                  </>
                )}
                {ap.gates && ap.gates.length > 0 && (
                  <>
                    <dt>Gates</dt>
                    <dd class="row">
                      {ap.gates.map((g) => (
                        <Badge key={g.gate_id} value={g.verdict} label={g.gate_id} />
                      ))}
                    </dd>
                  </>
                )}
                {ap.changes && (
                  <>
                    <dt>Changes</dt>
                    <dd class="mono small">
                      {ap.changes.length === 0
                        ? "none"
                        : ap.changes.slice(0, 8).map((c) => `${c.status ?? "?"} ${c.path ?? ""}`).join(", ") +
                          (ap.changes.length > 8 ? ` and ${ap.changes.length - 8} more` : "")}
                    </dd>
                  </>
                )}
              </dl>
              {operator && (
                <div class="row" style={{ marginTop: "10px" }}>
                  <ActionButton
                    label={`Approve ${nameOf(a)}`}
                    title={`Approve run ${a.run_id}?`}
                    explain={
                      approvals.length + 1 >= needed
                        ? `Your approval completes it: the run is sealed ${ap.verdict_if_approved ?? "success"} with a proof pack.`
                        : `Your approval is recorded; ${needed - approvals.length - 1} more will be needed.`
                    }
                    fields={[{ name: "reason", label: "Reason (optional)" }]}
                    act={decide(a, "approve")}
                    done={inbox.reload}
                  />
                  <ActionButton
                    label={`Reject ${nameOf(a)}`}
                    danger
                    title={`Reject run ${a.run_id}?`}
                    explain="The run is sealed denied, with an incident pack recording your reason."
                    fields={[{ name: "reason", label: "Reason (optional)" }]}
                    act={decide(a, "reject")}
                    done={inbox.reload}
                  />
                  <Link href={`/runs/${a.run_id}`}>Open the run</Link>
                </div>
              )}
            </li>
          );
        })}
      </ul>
    </Page>
  );
}
