// What can be done to the run, by the session's role and the run's state: a button is shown only when the
// role may do it and the run is in a state the API would accept it in (the API checks both again). Each
// asks first, then shows what the API answered, and the page reloads its data. A button that was used stays
// (its answer beside it) even when the run's new state would no longer offer it, so the answer is not lost
// the moment the run changes.
import { useState } from "preact/hooks";
import { api, ok, type Schemas } from "../../api/client";
import { can } from "../../api/roles";
import { useSession } from "../../api/session";
import { ActionButton } from "../../components/action_button";
import type { Manifest } from "./types";

const live = new Set(["created", "running", "gating"]);
const reasonField = (required = false) => ({ name: "reason", label: required ? "Reason (required)" : "Reason (optional)", required });
const opt = (s: string | undefined) => (s && s.trim() ? s.trim() : undefined);
const decided = (d: Schemas["Decision"]) =>
  d.message ?? `${d.outcome ?? "done"}${d.status ? `: the run is ${d.status}${d.verdict ? ` (${d.verdict})` : ""}` : ""}`;

export function RunActions({ manifest, done }: { manifest: Manifest; done(): void }) {
  const { who } = useSession();
  const [used, setUsed] = useState<string[]>([]);
  const after = (label: string) => () => {
    setUsed((u) => (u.includes(label) ? u : u.concat(label)));
    done();
  };
  const shown = (label: string, when: boolean) => when || used.includes(label);
  const role = who?.role;
  const id = manifest.run_id ?? "";
  const path = { path: { id } };
  const status = manifest.status ?? "";
  const sealed = status === "sealed";
  if (!can(role, "operator")) return null;

  const awaiting = status === "awaiting_approval";
  const promotable = sealed && manifest.verdict === "success" && !manifest.evidence && !manifest.rollback;
  const rollbackable =
    sealed && !manifest.rollback && (manifest.evidence?.decision === "promoted" || (!manifest.evidence && !!manifest.worktree_kept));
  const replayable = sealed && manifest.kind !== "chain";

  return (
    <div class="row actions" role="group" aria-label="Actions on this run">
      {shown("Approve", awaiting) && (
        <ActionButton
          label="Approve"
          title="Approve this run?"
          explain="Your approval is recorded with your token's name; the run is sealed as a success once its pack's number of approvers is reached."
          fields={[reasonField()]}
          act={async (v) => decided(await ok(api.POST("/api/runs/{id}/approve", { params: path, body: { reason: opt(v.reason) } })))}
          done={after("Approve")}
        />
      )}
      {shown("Reject", awaiting) && (
        <ActionButton
          label="Reject"
          title="Reject this run?"
          explain="The run is sealed as denied, with an incident pack, and its worktree is discarded."
          danger
          fields={[reasonField()]}
          act={async (v) => decided(await ok(api.POST("/api/runs/{id}/reject", { params: path, body: { reason: opt(v.reason) } })))}
          done={after("Reject")}
        />
      )}
      {can(role, "admin") && shown("God-mode approve", awaiting) && (
        <ActionButton
          label="God-mode approve"
          title="Approve alone, whatever the pack asks?"
          explain="An admin's decision that stands in for every approver the pack asks for. It is recorded as god mode, with your reason."
          danger
          fields={[reasonField(true)]}
          act={async (v) => decided(await ok(api.POST("/api/runs/{id}/god-mode-approve", { params: path, body: { reason: v.reason ?? "" } })))}
          done={after("God-mode approve")}
        />
      )}
      {shown("Cancel run", live.has(status)) && (
        <ActionButton
          label="Cancel run"
          title="Cancel this run?"
          explain="A running run is stopped and sealed as cancelled."
          danger
          fields={[reasonField()]}
          act={async (v) => {
            const r = await ok(api.POST("/api/runs/{id}/cancel", { params: path, body: { reason: opt(v.reason) } }));
            return r.outcome === "cancel_requested" ? "Cancel requested: the run stops shortly." : "Cancelled.";
          }}
          done={after("Cancel run")}
        />
      )}
      {shown("Promote", promotable) && (
        <ActionButton
          label="Promote"
          title="Promote this run's change onto a branch?"
          explain="The run's diff is committed onto the branch (a new branch starts at the run's baseline). No working tree is touched."
          fields={[{ name: "branch", label: "Branch", required: true, placeholder: "cp/my-change" }, reasonField()]}
          act={async (v) => {
            const r = await ok(
              api.POST("/api/runs/{id}/evidence/promote", { params: path, body: { branch: v.branch ?? "", reason: opt(v.reason) } }),
            );
            const e = (r.evidence ?? {}) as { branch?: string; commit?: string };
            return r.message ?? `Promoted onto ${e.branch ?? v.branch} as ${e.commit?.slice(0, 12) ?? "a commit"}.`;
          }}
          done={after("Promote")}
        />
      )}
      {shown("Roll back", rollbackable) && (
        <ActionButton
          label="Roll back"
          title="Roll this run back?"
          explain="A promoted change gets a revert commit on its branch; a kept worktree that was never promoted is removed."
          danger
          fields={[reasonField(true)]}
          act={async (v) => {
            const r = await ok(api.POST("/api/runs/{id}/rollback", { params: path, body: { reason: v.reason ?? "" } }));
            return r.message ?? "Rolled back.";
          }}
          done={after("Roll back")}
        />
      )}
      {shown("Replay", replayable) && (
        <ActionButton
          label="Replay"
          title="Replay this run?"
          explain="The same compiled contract is queued again from the run's baseline commit; the new run records that it replays this one."
          act={async () => {
            const r = await ok(api.POST("/api/runs/{id}/replay", { params: path, body: {} }));
            return `Replay queued as item ${r.item_id} (${r.state}); it appears in the queue and, once it runs, in the runs list.`;
          }}
          done={after("Replay")}
        />
      )}
      <ActionButton
        label="Verify"
        title="Verify this run's bundle now?"
        explain="Every file of the bundle is read again and checked against its seal and event chain."
        act={async () => {
          const r = await ok(api.POST("/api/runs/{id}/verify", { params: path, body: {} }));
          return r.ok ? `The bundle is ${r.state}.` : `The bundle is ${r.state}: ${r.problems.join("; ")}`;
        }}
        done={after("Verify")}
      />
    </div>
  );
}
