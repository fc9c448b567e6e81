// The shapes the run detail reads out of answers the API document types loosely ("an object"): the manifest
// (schemas/run_manifest.schema.json), events, reports and packs. Only the fields the page shows; every one
// optional, since a bundle is read as it is (an older or a hostile one may lack any of them).
export type Approval = {
  state?: "pending" | "approved" | "rejected" | "expired";
  requested_at?: string;
  deadline?: string;
  approvers_required?: number;
  approvals?: { by?: string; how?: string; at?: string; reason?: string }[];
  decision?: { by?: string; how?: string; at?: string; reason?: string; decision?: string };
};

export type ManifestGate = { gate_id: string; verdict: string; required?: boolean; report?: string; summary?: string };

export type Usage = {
  input_tokens?: number;
  cached_input_tokens?: number;
  output_tokens?: number;
  cost_usd?: number;
  turns?: number;
};

export type Manifest = {
  run_id?: string;
  task_id?: string;
  workflow_id?: string;
  queue?: { item_id?: string; attempt?: number };
  contract_sha256?: string;
  runner?: string;
  pack?: string;
  baseline_commit?: string;
  baseline_ref?: string;
  status?: string;
  verdict?: string;
  reason?: string;
  created_at?: string;
  started_at?: string;
  finished_at?: string;
  duration_ms?: number;
  gates?: ManifestGate[];
  usage?: Usage;
  events?: { count?: number };
  worktree_kept?: boolean;
  kind?: "run" | "chain";
  replay_of?: string;
  from_run?: string;
  resumed_from?: string;
  chain?: { run_id?: string; step_id?: string; role?: string };
  chain_steps?: { step_id?: string; run_id?: string; role?: string; verdict?: string }[];
  approval?: Approval;
  evidence?: { decision?: string; by?: string; at?: string; reason?: string; branch?: string; commit?: string };
  rollback?: { action?: string; by?: string; at?: string; reason?: string; branch?: string; commit?: string };
  sandbox?: { kind?: string; network?: string };
};

export type RunEvent = { seq: number; ts?: string; type: string; payload?: Record<string, unknown> };

export type Diagnostic = { severity?: string; message?: string; rule?: string; path?: string };
export type GateReport = {
  verdict?: string;
  summary?: string;
  diagnostics?: Diagnostic[];
  details?: Record<string, unknown>;
  next_action?: string;
  duration_ms?: number;
  isolation?: string;
};

export type Change = { status?: string; path?: string; old_path?: string };
export type PackGate = { gate_id?: string; verdict?: string; required?: boolean; report_sha256?: string; summary?: string };

export type TaskResult = {
  status?: string;
  reason?: string;
  commands?: { command?: string; status?: string; exit_code?: number; duration_ms?: number; reason?: string }[];
  usage?: Usage;
  changes?: Change[];
};

export type Budgets = { max_turns?: number; max_tokens?: number; max_cost_usd?: number; wall_time_sec?: number };

// A value read out of an untyped object, as the type the page expects it to be, or undefined.
export const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);
export const num = (v: unknown): number | undefined => (typeof v === "number" && Number.isFinite(v) ? v : undefined);

// The dashboard page of a run (its id escaped: ids are checked by the API, never trusted here).
export const runHref = (id: string) => `/runs/${encodeURIComponent(id)}`;
// The API address of one artifact: each segment of its path escaped, the slashes kept (the route takes them).
export const artifactHref = (id: string, path: string) =>
  `/api/runs/${encodeURIComponent(id)}/artifacts/${path.split("/").map(encodeURIComponent).join("/")}`;
