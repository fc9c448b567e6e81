// One run: its verdict and why, the facts, what to do with it (by role), its events live while it runs, its
// gates and their reports, the proof or incident pack, the diff, its artifacts, the runner's result, usage
// against the contract's budgets, and a way to compare it with another run. The parts live in run_detail/.
import { useEffect, useRef, useState } from "preact/hooks";
import { Link } from "wouter-preact";
import { api, ok } from "../api/client";
import { useApi } from "../api/use_api";
import { ErrorPanel } from "../components/error_panel";
import { Guard } from "../components/guard";
import { Loading, Page } from "../components/page";
import { RunActions } from "./run_detail/actions";
import { Artifacts } from "./run_detail/artifacts";
import { CompareForm } from "./run_detail/compare";
import { DiffView } from "./run_detail/diff_view";
import { Decisions, Facts, Verdict, trusted, type Verification } from "./run_detail/facts";
import { Gates } from "./run_detail/gates";
import { ApprovalPack, IncidentPack, ProofPack } from "./run_detail/packs";
import { TaskResultView, UsageView } from "./run_detail/result";
import { Timeline } from "./run_detail/timeline";
import type { Budgets, Manifest, TaskResult } from "./run_detail/types";

export { RunComparePage } from "./run_detail/compare";

export function RunDetailPage({ params }: { params: { id: string } }) {
  const id = params.id;
  // Bumped to read the run again: after an action, and (at most once a second) as its events come in.
  const [version, setVersion] = useState(0);
  const reload = () => setVersion((v) => v + 1);
  const run = useApi(() => ok(api.GET("/api/runs/{id}", { params: { path: { id } } })), [id, version]);
  const reports = useApi(() => ok(api.GET("/api/runs/{id}/reports", { params: { path: { id } } })), [id, version]);
  const contract = useApi(() => ok(api.GET("/api/runs/{id}/contract", { params: { path: { id } } })), [id]);

  const pending = useRef<number>();
  useEffect(() => () => window.clearTimeout(pending.current), []);
  const onEvents = (ended: boolean) => {
    if (ended) {
      window.clearTimeout(pending.current);
      pending.current = undefined;
      reload();
      return;
    }
    if (pending.current) return;
    pending.current = window.setTimeout(() => {
      pending.current = undefined;
      reload();
    }, 1000);
  };

  const m = run.data?.manifest as Manifest | undefined;
  const r = reports.data;
  const packs = (r?.packs ?? {}) as Record<string, Record<string, unknown> | undefined>;
  const named = (r?.reports ?? {}) as Record<string, unknown>;
  const inner = (contract.data?.contract ?? {}) as { contract?: { budgets?: Budgets } };
  const budgets = inner.contract?.budgets ?? {};
  const verification = run.data?.verification as Verification | undefined;

  return (
    <Page
      title={`Run ${id}`}
      actions={
        m && (
          <Guard what="the run's actions">
            <RunActions key={id} manifest={{ ...m, run_id: m.run_id ?? id }} done={reload} />
          </Guard>
        )
      }
    >
      <p class="small">
        <Link href="/runs">All runs</Link>
      </p>
      {run.error && <ErrorPanel error={run.error} what={`load run ${id}`} />}
      {!m && !run.error && <Loading what="the run" />}
      {m && (
        <>
          <Guard what="the run's verdict">
            <Verdict m={m} verification={verification} />
            <Decisions m={m} />
          </Guard>
          <Guard what="the run's packs">
            {packs.proof_pack && <ProofPack pack={packs.proof_pack} trusted={trusted(m, verification)} />}
            {packs.incident_pack && <IncidentPack pack={packs.incident_pack} />}
            {m.status === "awaiting_approval" && packs.approval_pack && <ApprovalPack pack={packs.approval_pack} approval={m.approval} />}
          </Guard>
          <div class="split">
            <section aria-labelledby="facts-title">
              <h2 id="facts-title">Facts</h2>
              <Guard what="the run's facts">
                <Facts m={m} verification={verification} />
              </Guard>
            </section>
            <section aria-labelledby="usage-title">
              <h2 id="usage-title">Usage against budgets</h2>
              <Guard what="the run's usage">
                <UsageView manifest={m} budgets={budgets} now={Date.now()} />
              </Guard>
              {contract.error && contract.error.status !== 404 && <ErrorPanel error={contract.error} what="read the run's budgets" />}
            </section>
          </div>
        </>
      )}
      {/* The timeline reads the events itself, so it starts (and goes live) even before the manifest. */}
      {!run.error && (
        <Guard what="the run's events">
          <Timeline key={id} runId={id} version={version} onChange={onEvents} />
        </Guard>
      )}
      {m && (
        <>
          <section aria-labelledby="gates-title">
            <h2 id="gates-title">Gates</h2>
            {reports.error && <ErrorPanel error={reports.error} what="read the run's reports" />}
            <Guard what="the run's gates">
              <Gates runId={id} gates={m.gates ?? []} reports={named} />
            </Guard>
            {(r?.skipped?.length ?? 0) > 0 && (
              <p class="small muted">
                Not shown: {r!.skipped.map((s) => `${s.name} (${s.why})`).join(", ")}
              </p>
            )}
          </section>
          <section aria-labelledby="result-title">
            <h2 id="result-title">Task result</h2>
            <Guard what="the task result">
              <TaskResultView result={named.task_result as TaskResult | undefined} />
            </Guard>
          </section>
          <section aria-labelledby="diff-title">
            <h2 id="diff-title">Diff</h2>
            <Guard what="the diff">
              <DiffView runId={id} version={version} />
            </Guard>
          </section>
          <section aria-labelledby="artifacts-title">
            <h2 id="artifacts-title">Artifacts</h2>
            <Guard what="the artifacts">
              <Artifacts runId={id} version={version} />
            </Guard>
          </section>
          <section aria-labelledby="compare-title">
            <h2 id="compare-title">Compare with another run</h2>
            <CompareForm runId={id} suggest={m.replay_of ?? m.from_run} />
          </section>
        </>
      )}
    </Page>
  );
}
