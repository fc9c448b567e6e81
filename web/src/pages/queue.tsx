// The queue: items in the order the scheduler will start them, each with why it waits and how its SLA
// stands; one item's detail with cancel and priority (operator); and submitting a contract, pasted or read
// from a file, whose 422 diagnostics are shown at the line of the submitted text they point into.
import { useRef, useState } from "preact/hooks";
import { Link, useLocation, useSearch } from "wouter-preact";
import { api, ApiError, ok, type Schemas } from "../api/client";
import { useLive } from "../api/live";
import { can } from "../api/roles";
import { useSession } from "../api/session";
import { useApi } from "../api/use_api";
import { ActionButton } from "../components/action_button";
import { Badge } from "../components/badge";
import { DataTable } from "../components/data_table";
import { ErrorPanel } from "../components/error_panel";
import { Loading, Page } from "../components/page";
import { Time } from "../components/time";
import { JsonTextError, lineOfPointer, valueLines } from "./json_lines";

// The fields the API sends beyond those openapi.json names (see docs/api.md, "The queue").
type Item = Schemas["QueueItem"] & {
  enqueued_at?: string;
  lock_paths?: string[];
  depends_on?: string[];
  run_after?: string;
  deadline?: string;
  start_by?: string;
  workflow_id?: string;
  submitted_by?: string;
  held?: boolean;
  cancel_requested?: boolean;
  max_retries?: number;
  repo?: string;
};
type Attempt = { attempt?: number; run_id?: string; claimed_at?: string; finished_at?: string; status?: string; reason?: string; error?: string };

const states = ["queued", "claimed", "running", "done", "cancelled"] as const;
const ended = (it: Item) => it.state === "done" || it.state === "cancelled";

// The API lists queued items in the order the scheduler starts them (priority, higher first, then queue
// order), then the rest in queue order. Shown: what has started, then the line; ended items newest first.
export function splitByPlace(items: Item[]): { inLine: Item[]; past: Item[] } {
  const started = items.filter((it) => it.state === "running" || it.state === "claimed");
  const waiting = items.filter((it) => it.state === "queued");
  return { inLine: [...started, ...waiting], past: items.filter(ended).reverse() };
}

function Waiting({ it }: { it: Item }) {
  if (it.state !== "queued") return <span class="muted">—</span>;
  if (it.eligible) return <Badge value="eligible" />;
  return (
    <span>
      <Badge value="waiting" /> <span class="small">{it.waiting_on ?? "not eligible yet"}</span>
    </span>
  );
}

export function QueuePage() {
  const search = new URLSearchParams(useSearch());
  const [, navigate] = useLocation();
  const { who } = useSession();
  const operator = can(who?.role, "operator");
  const state = search.get("state") ?? "";
  const selected = search.get("item");

  const queue = useApi(() => ok(api.GET("/api/queue", { params: { query: state ? { state: state as (typeof states)[number] } : {} } })), [state]);
  const pending = useRef<number>();
  // Queue items change as runs start, end and wait on each other: refresh on the host's events, at most twice
  // a second however many arrive.
  const live = useLive("/api/events/stream", () => {
    if (pending.current) return;
    pending.current = window.setTimeout(() => {
      pending.current = undefined;
      queue.reload();
    }, 500);
  });

  const go = (params: Record<string, string | null>) => {
    const q = new URLSearchParams(search);
    for (const [k, v] of Object.entries(params)) v ? q.set(k, v) : q.delete(k);
    const s = q.toString();
    navigate("/queue" + (s ? "?" + s : ""));
  };

  const { inLine, past } = splitByPlace((queue.data?.items ?? []) as Item[]);
  const place = new Map(inLine.filter((it) => it.state === "queued").map((it, i) => [it.item_id, i + 1]));
  const itemLink = (it: Item) => (
    <Link href={`/queue?${new URLSearchParams({ ...(state ? { state } : {}), item: it.item_id })}`} class="mono" aria-current={it.item_id === selected ? "true" : undefined}>
      {it.item_id}
    </Link>
  );
  const runLink = (it: Item) => (it.run_id ? <Link href={`/runs/${it.run_id}`} class="mono">{it.run_id}</Link> : <span class="muted">—</span>);
  const counts = Object.entries((queue.data?.counts ?? {}) as Record<string, number>);

  return (
    <Page title="Queue" actions={<span class="small muted">{live ? "Live" : "Not live (reconnecting)"}</span>}>
      <div class="filters">
        <label>
          State
          <select value={state} onChange={(e) => go({ state: (e.target as HTMLSelectElement).value || null })}>
            <option value="">any</option>
            {states.map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>
        <p class="small muted" data-testid="queue-counts">
          {counts.length ? counts.map(([k, n]) => `${n} ${k}`).join(" · ") : "No item"}
          {queue.data?.global_limit ? ` · ${queue.data.global_limit} run(s) at once` : ""}
        </p>
      </div>
      {queue.error && <ErrorPanel error={queue.error} what="list the queue" />}
      {(queue.data?.problems?.length ?? 0) > 0 && (
        <div class="error" role="alert">
          <p>
            <strong>The queue file has lines serve could not read</strong> (they are skipped; <code>cp-host queue list</code> shows the same):
          </p>
          <ul>
            {(queue.data!.problems as { line?: number; message?: string }[]).slice(0, 10).map((p, i) => (
              <li key={i}>
                line {p.line ?? "?"}: {p.message}
              </li>
            ))}
          </ul>
        </div>
      )}
      {!queue.data && !queue.error && <Loading what="the queue" />}
      {selected && <ItemPanel key={selected} id={selected} operator={operator} changed={queue.reload} close={() => go({ item: null })} />}
      {queue.data && (
        <>
          {/* An empty table would still be as wide as its ten headers: on a phone, a box to scroll with nothing in it. */}
          {inLine.length === 0 ? (
            <p class="panel muted">Nothing is waiting or running.</p>
          ) : (
            <DataTable<Item>
              caption="Waiting and running, in the order the scheduler starts them"
              rows={inLine}
              rowKey={(it) => it.item_id}
              columns={[
                { title: "#", num: true, cell: (it) => place.get(it.item_id) ?? "" },
                { title: "Item", cell: itemLink },
                { title: "Task", cell: (it) => it.task_id ?? "—" },
                { title: "Pack", cell: (it) => it.pack ?? "—" },
                { title: "Priority", num: true, cell: (it) => it.priority },
                { title: "State", cell: (it) => <Badge value={it.cancel_requested ? "cancel requested" : it.state} /> },
                { title: "Eligible", cell: (it) => <Waiting it={it} /> },
                { title: "SLA", cell: (it) => <Badge value={it.sla_state} /> },
                { title: "Run", cell: runLink },
                { title: "Queued", cell: (it) => <Time iso={it.enqueued_at} /> },
              ]}
            />
          )}
          {past.length > 0 && (
            <>
              <h2>Ended</h2>
              <DataTable<Item>
                caption="Done or cancelled, newest first"
                rows={past}
                rowKey={(it) => it.item_id}
                columns={[
                  { title: "Item", cell: itemLink },
                  { title: "Task", cell: (it) => it.task_id ?? "—" },
                  { title: "State", cell: (it) => <Badge value={it.state} /> },
                  { title: "Outcome", cell: (it) => (it.status ? <Badge value={it.status} /> : <span class="muted">—</span>) },
                  { title: "Run", cell: runLink },
                  { title: "Queued", cell: (it) => <Time iso={it.enqueued_at} /> },
                ]}
              />
            </>
          )}
        </>
      )}
      {operator ? (
        <Submit queued={(id) => { queue.reload(); go({ item: id }); }} />
      ) : (
        <p class="small muted">Submitting, cancelling and re-prioritising need an operator token.</p>
      )}
    </Page>
  );
}

// One item: what it is, why it waits, its attempts; cancel and priority for an operator while it has not ended.
function ItemPanel({ id, operator, changed, close }: { id: string; operator: boolean; changed(): void; close(): void }) {
  const item = useApi(() => ok(api.GET("/api/queue/{item_id}", { params: { path: { item_id: id } } })) as Promise<Item>, [id]);
  const it = item.data;
  // What the last action here said: the buttons go once the item has ended, their outcome stays.
  const [said, setSaid] = useState<string>();
  const done = () => {
    item.reload();
    changed();
  };
  return (
    <section class="panel" aria-labelledby="item-title" data-testid="queue-item">
      <div class="spread">
        <h2 id="item-title">
          Item <span class="mono">{id}</span>
        </h2>
        <button type="button" onClick={close}>
          Close
        </button>
      </div>
      {item.error && <ErrorPanel error={item.error} what={`read item ${id}`} />}
      {!it && !item.error && <Loading what="the item" />}
      {it && (
        <>
          <dl class="facts">
            <dt>State</dt>
            <dd>
              <Badge value={it.state} /> {it.cancel_requested && <Badge value="cancel requested" />} {it.held && <Badge value="held" />}
            </dd>
            <dt>Task</dt>
            <dd>{it.task_id ?? "—"}</dd>
            <dt>Pack</dt>
            <dd>{it.pack ?? "—"}</dd>
            <dt>Priority</dt>
            <dd data-testid="item-priority">{it.priority}</dd>
            <dt>Eligible</dt>
            <dd>
              <Waiting it={it} />
            </dd>
            <dt>SLA</dt>
            <dd>
              <Badge value={it.sla_state} />
              {it.deadline && <> deadline <Time iso={it.deadline} /></>}
              {it.start_by && <> start by <Time iso={it.start_by} /></>}
            </dd>
            {it.depends_on && (
              <>
                <dt>Depends on</dt>
                <dd class="mono">{it.depends_on.join(", ")}</dd>
              </>
            )}
            {it.lock_paths && (
              <>
                <dt>Locks</dt>
                <dd class="mono">{it.lock_paths.join(", ")}</dd>
              </>
            )}
            {it.workflow_id && (
              <>
                <dt>Workflow</dt>
                <dd>
                  <Link href={`/workflows/${it.workflow_id}`}>{it.workflow_id}</Link>
                </dd>
              </>
            )}
            <dt>Queued</dt>
            <dd>
              <Time iso={it.enqueued_at} /> {it.submitted_by && <>by {it.submitted_by}</>}
            </dd>
            {it.status && (
              <>
                <dt>Outcome</dt>
                <dd>
                  <Badge value={it.status} /> {it.reason}
                </dd>
              </>
            )}
          </dl>
          {it.error && <pre class="block">{it.error}</pre>}
          {(it.attempts as Attempt[] | undefined)?.length ? (
            <DataTable<Attempt>
              caption="Attempts"
              rows={it.attempts as Attempt[]}
              rowKey={(a) => String(a.attempt)}
              columns={[
                { title: "#", num: true, cell: (a) => a.attempt ?? "—" },
                { title: "Run", cell: (a) => (a.run_id ? <Link href={`/runs/${a.run_id}`} class="mono">{a.run_id}</Link> : "—") },
                { title: "Claimed", cell: (a) => <Time iso={a.claimed_at} /> },
                { title: "Ended", cell: (a) => <Time iso={a.finished_at} /> },
                { title: "Outcome", cell: (a) => (a.status ? <><Badge value={a.status} /> {a.reason}</> : "—") },
              ]}
            />
          ) : null}
          {said && (ended(it) || it.cancel_requested) && (
            <p class="notice small" role="status">
              {said}
            </p>
          )}
          {operator && !ended(it) && !it.cancel_requested && (
            <div class="row" style={{ marginTop: "10px" }}>
              {it.state === "queued" && (
                <ActionButton
                  label="Change priority"
                  title={`Change the priority of ${it.item_id}?`}
                  explain="From 0 to 9; higher runs first, and within a priority the earlier queued. Only a waiting item can be re-prioritised."
                  fields={[{ name: "priority", label: "Priority (0–9)", required: true, value: String(it.priority) }]}
                  act={async (v) => {
                    const p = (v.priority ?? "").trim();
                    if (!/^[0-9]$/.test(p))
                      throw new ApiError(422, "bad_priority", "The priority must be a whole number from 0 to 9.", { pointer: "/priority" });
                    const r = await ok(api.POST("/api/queue/{item_id}/priority", { params: { path: { item_id: it.item_id } }, body: { priority: Number(p) } }));
                    return r.changed ? `Priority now ${r.item.priority}` : `Priority was ${r.item.priority} already`;
                  }}
                  done={done}
                />
              )}
              <ActionButton
                label="Cancel item"
                danger
                title={`Cancel ${it.item_id}?`}
                explain={it.state === "queued" ? "It will not start." : "Its run is stopped and sealed as cancelled."}
                fields={[{ name: "reason", label: "Reason (optional, recorded)" }]}
                act={async (v) => {
                  const reason = (v.reason ?? "").trim();
                  const r = await ok(
                    api.POST("/api/queue/{item_id}/cancel", { params: { path: { item_id: it.item_id } }, body: reason ? { reason } : {} }),
                  );
                  const msg = `${r.item_id}: ${r.outcome === "cancelled" ? "cancelled" : "cancel requested"}`;
                  setSaid(msg);
                  return msg;
                }}
                done={done}
              />
            </div>
          )}
        </>
      )}
    </section>
  );
}

type Diagnostic = { pointer: string; message: string; expected?: string; rule?: string; line?: number; exact?: boolean };

// The diagnostics of a 422 with the line each points at in the text that was sent (a wrapped submission's
// pointers start with /contract; the text is the contract itself).
export function diagnosticsOf(e: ApiError, sent: string): Diagnostic[] {
  const raw = e.details as unknown;
  const list = Array.isArray(raw) ? raw : [{ pointer: e.pointer ?? "", message: e.message }];
  return list.map((d: Record<string, unknown>) => {
    const pointer = typeof d.pointer === "string" ? d.pointer : "";
    const inText = pointer === "/contract" ? "" : pointer.startsWith("/contract/") ? pointer.slice("/contract".length) : pointer;
    const at = lineOfPointer(sent, inText);
    return {
      pointer,
      message: String(d.message ?? d.text ?? ""),
      expected: typeof d.expected === "string" ? d.expected : undefined,
      rule: typeof d.rule === "string" ? d.rule : undefined,
      line: at?.line,
      exact: at?.exact,
    };
  });
}

// A few lines of `text` around `line`, that line marked.
function Excerpt({ text, line }: { text: string; line: number }) {
  const lines = text.split("\n");
  const from = Math.max(1, line - 2);
  const to = Math.min(lines.length, line + 2);
  const shown = [];
  for (let n = from; n <= to; n++)
    shown.push(
      <div key={n} class={n === line ? "src-line hl" : "src-line"} data-line={n}>
        <span class="ln" aria-hidden="true">{n}</span>
        {n === line ? <mark>{lines[n - 1]}</mark> : lines[n - 1]}
      </div>,
    );
  return <div class="src">{shown}</div>;
}

function Submit({ queued }: { queued(itemId: string): void }) {
  const [text, setText] = useState("");
  const [priority, setPriority] = useState("");
  const [sent, setSent] = useState("");
  const [problems, setProblems] = useState<Diagnostic[]>([]);
  const [fileError, setFileError] = useState<string>();
  const editor = useRef<HTMLTextAreaElement>(null);

  // What would be queued, read from the text as it stands (or why it is not JSON yet, and where).
  let summary: string;
  let syntax: JsonTextError | undefined;
  let contract: Record<string, any> | undefined;
  try {
    if (!text.trim()) throw new Error("empty");
    valueLines(text);
    const parsed = JSON.parse(text);
    if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) {
      contract = parsed;
      const ro = (parsed.runtime_options ?? {}) as Record<string, unknown>;
      summary = `Task ${parsed.task_id ?? "(no task_id)"}, runner ${ro.runner ?? "(none)"}, pack ${ro.pack ?? "(default)"}, priority ${priority || (ro.priority ?? "5 (default)")}. serve checks it as cp-host validate does before queueing it.`;
    } else summary = "The text is JSON but not an object: a contract is a JSON object.";
  } catch (e) {
    if (e instanceof JsonTextError && text.trim()) syntax = e;
    summary = text.trim() ? `The text is not JSON: ${e instanceof Error ? e.message : String(e)}` : "Paste a contract or pick a file first.";
  }

  const pick = async (e: Event) => {
    const f = (e.target as HTMLInputElement).files?.[0];
    setFileError(undefined);
    if (!f) return;
    if (f.size > 16 * 1024 * 1024) return setFileError(`${f.name} is over 16 MiB, the largest contract serve takes.`);
    try {
      setText(await f.text());
      setProblems([]);
    } catch (err) {
      setFileError(`Could not read ${f.name}: ${String(err)}`);
    }
  };

  // Selects line `n` of the editor, so the operator can fix it there.
  const show = (n: number) => {
    const t = editor.current;
    if (!t) return;
    const lines = t.value.split("\n");
    const start = lines.slice(0, n - 1).reduce((s, l) => s + l.length + 1, 0);
    t.focus();
    t.setSelectionRange(start, start + (lines[n - 1]?.length ?? 0));
  };

  const submit = async () => {
    if (!contract) throw new ApiError(422, "not_json", syntax ? `The contract is not JSON: ${syntax.message}` : summary, syntax ? { line: syntax.line } : {});
    const p = priority.trim();
    if (p && !/^[0-9]$/.test(p)) throw new ApiError(422, "bad_priority", "Priority must be a whole number from 0 to 9.", { pointer: "/priority" });
    setSent(text);
    setProblems([]);
    try {
      const item = await ok(api.POST("/api/runs", { body: { contract, ...(p ? { priority: Number(p) } : {}) } }));
      queued(item.item_id);
      return `Queued as ${item.item_id}`;
    } catch (e) {
      if (e instanceof ApiError && e.status === 422) setProblems(diagnosticsOf(e, text));
      throw e;
    }
  };

  return (
    <section aria-labelledby="submit-title">
      <h2 id="submit-title">Submit a contract</h2>
      <div class="row">
        <label>
          Contract file
          <input type="file" accept=".json,application/json" onChange={pick} />
        </label>
        <label>
          Priority (0–9, higher first; empty: the contract's)
          <input type="number" min={0} max={9} step={1} value={priority} size={3} onInput={(e) => setPriority((e.target as HTMLInputElement).value)} />
        </label>
      </div>
      {fileError && <p class="error" role="alert">{fileError}</p>}
      <p>
        <label style={{ display: "flex" }}>
          Contract (JSON)
          <textarea
            ref={editor}
            class="mono"
            spellcheck={false}
            value={text}
            onInput={(e) => setText((e.target as HTMLTextAreaElement).value)}
            aria-describedby="contract-state"
            aria-invalid={syntax ? true : undefined}
          />
        </label>
      </p>
      <p id="contract-state" class="small muted">
        {syntax ? (
          <>
            Not JSON yet: {syntax.message}{" "}
            <button type="button" onClick={() => show(syntax!.line)}>
              Go to line {syntax.line}
            </button>
          </>
        ) : (
          summary
        )}
      </p>
      <ActionButton label="Queue contract" title="Queue this contract?" explain={summary} act={submit} />
      {problems.length > 0 && (
        <div class="error" role="alert" data-testid="diagnostics">
          <p>
            <strong>Not queued: the contract has {problems.length} problem{problems.length > 1 ? "s" : ""}.</strong> Each is shown at its line of
            the text that was sent.
          </p>
          <ol class="diagnostics">
            {problems.map((d, i) => (
              <li key={i} data-testid="diagnostic">
                <p>
                  <code data-testid="diagnostic-pointer">{d.pointer || "(the whole contract)"}</code>{" "}
                  {d.line !== undefined ? (
                    <button type="button" class="link" onClick={() => show(d.line!)} data-testid="diagnostic-line">
                      line {d.line}
                      {d.exact ? "" : " (where it belongs)"}
                    </button>
                  ) : (
                    <span class="muted">(no line: the text sent has nothing there)</span>
                  )}
                  : {d.message}
                  {d.expected && <span class="small"> — expected {d.expected}</span>}
                </p>
                {d.line !== undefined && <Excerpt text={sent} line={d.line} />}
              </li>
            ))}
          </ol>
        </div>
      )}
    </section>
  );
}
