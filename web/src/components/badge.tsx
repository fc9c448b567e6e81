// A status, verdict or state as a coloured label; the word is always shown, colour only adds to it.
const tone: Record<string, string> = {
  ok: "ok", success: "ok", pass: "ok", sealed: "ok", approved: "ok", done: "ok", eligible: "ok", held: "info",
  failure: "bad", fail: "bad", denied: "bad", error: "bad", timeout: "bad", rejected: "bad", dead: "bad",
  breached: "bad", critical: "bad",
  warn: "warn", warning: "warn", awaiting_approval: "warn", waiting: "warn", cancelled: "warn", at_risk: "warn",
  running: "info", gating: "info", claimed: "info", queued: "info", created: "info", info: "info",
};

export function Badge({ value, label }: { value: string | null | undefined; label?: string }) {
  const v = value ?? "—";
  return <span class={"badge " + (tone[v] ?? "")}>{label ? `${label}: ${v}` : v}</span>;
}
