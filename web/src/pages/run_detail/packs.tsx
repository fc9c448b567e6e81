// The packs a run's bundle derives from its outcome: the proof pack of a successful run (what changed, the
// hash of the diff and of each gate's report it passed, the human decision if one was asked), the incident
// pack of a failed one (what failed and what to do next), the approval pack of a run awaiting a decision.
import { Badge } from "../../components/badge";
import { Time } from "../../components/time";
import { num, str, type Approval, type Change, type PackGate } from "./types";

type Pack = Record<string, unknown>;
const list = <T,>(v: unknown): T[] => (Array.isArray(v) ? (v as T[]) : []);

function Changes({ changes }: { changes: Change[] }) {
  if (!changes.length) return <p class="muted small">No file changed.</p>;
  return (
    <ul class="small">
      {changes.map((c, i) => (
        <li key={i}>
          <Badge value={c.status} /> <code>{c.path}</code>
          {c.old_path && <span class="muted"> (was {c.old_path})</span>}
        </li>
      ))}
    </ul>
  );
}

function GateList({ gates }: { gates: PackGate[] }) {
  return (
    <ul class="small">
      {gates.map((g, i) => (
        <li key={i}>
          <Badge value={g.verdict} /> <code>{g.gate_id}</code>
          {g.report_sha256 && <span class="muted mono"> report sha256 {g.report_sha256.slice(0, 16)}…</span>}
        </li>
      ))}
    </ul>
  );
}

// A pack's `approval` is the decision itself ({by, how, at, reason}); the manifest's holds it as `decision`.
function Decision({ approval }: { approval?: unknown }) {
  const a = (approval ?? {}) as Record<string, unknown>;
  const d = (a.decision && typeof a.decision === "object" ? a.decision : a) as NonNullable<Approval["decision"]>;
  if (!d.by) return null;
  return (
    <p class="small">
      Decided by <strong>{d.by}</strong> ({d.how?.replace(/_/g, " ")}) <Time iso={d.at} />
      {d.reason && <>: “{d.reason}”</>}
    </p>
  );
}

// `trusted`: the bundle verified against its seal. Otherwise the pack is only what the files claim.
export function ProofPack({ pack, trusted = true }: { pack: Pack; trusted?: boolean }) {
  return (
    <section class="panel proof" data-testid="proof" aria-labelledby="proof-title">
      <h3 id="proof-title">
        {trusted ? "Proof of success" : "Claimed proof (the bundle does not verify: not a proof)"} <Badge value={str(pack.verdict)} />
      </h3>
      <dl class="facts small">
        <dt>Diff sha256</dt>
        <dd class="mono">{str(pack.diff_sha256) ?? "—"}</dd>
        <dt>Contract sha256</dt>
        <dd class="mono">{str(pack.contract_sha256) ?? "—"}</dd>
        <dt>Baseline</dt>
        <dd class="mono">{str(pack.baseline_commit) ?? "—"}</dd>
        <dt>Made</dt>
        <dd>
          <Time iso={str(pack.created_at)} />
        </dd>
      </dl>
      <Decision approval={pack.approval} />
      <h4>Changes</h4>
      <Changes changes={list<Change>(pack.changes)} />
      <h4>Gates passed</h4>
      <GateList gates={list<PackGate>(pack.gates)} />
    </section>
  );
}

export function IncidentPack({ pack }: { pack: Pack }) {
  const failed = list<PackGate & { diagnostics?: unknown[] }>(pack.failed_gates);
  const tails = pack.log_tails && typeof pack.log_tails === "object" ? Object.entries(pack.log_tails as Record<string, unknown>) : [];
  return (
    <section class="panel incident" data-testid="incident" aria-labelledby="incident-title">
      <h3 id="incident-title">
        Incident <Badge value={str(pack.verdict)} />
      </h3>
      <p>{str(pack.reason)}</p>
      {str(pack.suggested_next_action) && (
        <p>
          <strong>What to do next:</strong> {str(pack.suggested_next_action)}
        </p>
      )}
      <Decision approval={pack.approval} />
      {failed.length > 0 && (
        <>
          <h4>Failed gates</h4>
          <GateList gates={failed} />
        </>
      )}
      {tails.map(([path, text]) => (
        <details key={path}>
          <summary class="small">
            Last lines of <code>{path}</code>
          </summary>
          <pre class="block" tabIndex={0}>{typeof text === "string" ? text : JSON.stringify(text, null, 2)}</pre>
        </details>
      ))}
    </section>
  );
}

export function ApprovalPack({ pack, approval }: { pack: Pack; approval?: Approval }) {
  const given = approval?.approvals ?? [];
  return (
    <section class="panel" data-testid="approval-pack" aria-labelledby="approval-title">
      <h3 id="approval-title">Awaiting a decision</h3>
      <p>
        {str(pack.reason)} If approved the verdict is <Badge value={str(pack.verdict_if_approved)} />.
      </p>
      <p class="small">
        {given.length} of {num(pack.approvers_required) ?? approval?.approvers_required ?? 1} approval(s) given
        {str(pack.deadline) && (
          <>
            ; denied by rule <Time iso={str(pack.deadline)} /> unless decided
          </>
        )}
        .
      </p>
      {given.length > 0 && (
        <ul class="small">
          {given.map((a, i) => (
            <li key={i}>
              {a.by} ({a.how}) <Time iso={a.at} />
              {a.reason && <>: “{a.reason}”</>}
            </li>
          ))}
        </ul>
      )}
      <h4>Changes</h4>
      <Changes changes={list<Change>(pack.changes)} />
    </section>
  );
}
