// Path locks: what each held lock covers, which run holds it and until when, and which queued items wait
// for it; an admin may force a release (with a reason, recorded as a host event) when a holder is stuck.
import { useRef, useState } from "preact/hooks";
import { Link } from "wouter-preact";
import { api, ok, type Schemas } from "../api/client";
import { useLive } from "../api/live";
import { can } from "../api/roles";
import { useSession } from "../api/session";
import { useApi } from "../api/use_api";
import { ActionButton } from "../components/action_button";
import { Badge } from "../components/badge";
import { DataTable } from "../components/data_table";
import { ErrorPanel } from "../components/error_panel";
import { Page } from "../components/page";
import { Time } from "../components/time";

type Lock = Schemas["PathLock"];
type Item = Schemas["QueueItem"];
type Released = { released: Lock[]; count: number; event: { type?: string; seq?: number } };

// A queued item's waiting_on when a lock keeps it back: "lock src/ held by <run id>".
const waitingOnLock = /^lock (.+) held by (\S+)$/;

function waitersOf(lock: Lock, items: Item[]): Item[] {
  return items.filter((i) => {
    const m = i.waiting_on?.match(waitingOnLock);
    return !!m && m[1] === lock.path && (m[2] === lock.run_id || m[2] === lock.item_id);
  });
}

function RunLink({ id }: { id: string | null | undefined }) {
  return id ? <Link href={`/runs/${id}`} class="mono">{id}</Link> : <span class="muted">not named yet</span>;
}

export function LocksPage() {
  const { who } = useSession();
  const locks = useApi(() => ok(api.GET("/api/locks")), []);
  const queue = useApi(() => ok(api.GET("/api/queue", { params: { query: { state: "queued" } } })), []);
  const [released, setReleased] = useState<Released>();
  const pending = useRef<number>();
  const reload = () => {
    locks.reload();
    queue.reload();
  };
  // Locks come and go with runs starting and sealing: refresh at most once a second on any event.
  const live = useLive("/api/events/stream", () => {
    if (pending.current) return;
    pending.current = window.setTimeout(() => {
      pending.current = undefined;
      reload();
    }, 1000);
  });
  const admin = can(who?.role, "admin");
  const waiting = (queue.data?.items ?? []).filter((i) => waitingOnLock.test(i.waiting_on ?? ""));
  const rows = locks.data?.locks ?? [];

  return (
    <Page
      title="Locks"
      actions={
        <>
          <span class="small muted">{live ? "Live" : "Not live (reconnecting)"}</span>
          <button type="button" onClick={reload}>
            Refresh
          </button>
        </>
      }
    >
      <p class="muted small">
        A queued run locks its <code>allowed_paths</code> in its repository while it runs; a run whose paths
        overlap a held lock waits. Locks go when the run is sealed, when they expire, or when an admin releases them.
      </p>
      {released && (
        <div class="notice" role="status" data-testid="released">
          Released {released.count} lock(s):{" "}
          {released.released.map((l) => (
            <span key={l.lock_id}>
              <code>{l.path}</code> held by <RunLink id={l.run_id} />{" "}
            </span>
          ))}
          — recorded as host event {released.event.type} #{released.event.seq}.
        </div>
      )}
      {locks.error && <ErrorPanel error={locks.error} what="list the locks" />}
      <DataTable<Lock>
        caption={locks.data ? `${locks.data.count} lock(s) held, oldest first` : "Loading locks…"}
        rows={rows}
        rowKey={(l) => l.lock_id}
        empty={locks.loading && !locks.data ? "Loading…" : "No lock is held."}
        columns={[
          { title: "Path", cell: (l) => <code data-testid="lock-path">{l.path}</code> },
          { title: "Holder run", cell: (l) => <RunLink id={l.run_id} /> },
          { title: "Queue item", cell: (l) => <span class="mono small">{l.item_id} (attempt {l.attempt})</span> },
          { title: "Repository", cell: (l) => <span class="mono small">{l.repo}</span> },
          { title: "Since", cell: (l) => <Time iso={l.since} /> },
          { title: "Expires", cell: (l) => <Time iso={l.expires_at} /> },
          {
            title: "Waiting",
            num: true,
            cell: (l) => {
              const n = waitersOf(l, waiting).length;
              return n ? <Badge value="waiting" label={String(n)} /> : <span class="muted">0</span>;
            },
          },
          ...(admin
            ? [
                {
                  title: "Action",
                  cell: (l: Lock) => (
                    <ActionButton
                      label={`Release ${l.path}`}
                      title={`Release the lock on ${l.path}?`}
                      danger
                      explain={
                        <>
                          The run <span class="mono">{l.run_id ?? l.item_id}</span> goes on without it, and a waiting run
                          whose paths overlap may start at once. The release is recorded with your reason.
                        </>
                      }
                      fields={[{ name: "reason", label: "Reason", required: true, placeholder: "why the lock must go" }]}
                      act={async (v) => {
                        const r = (await ok(
                          api.POST("/api/locks/release", { body: { lock: l.lock_id, reason: v.reason } }),
                        )) as Released;
                        setReleased(r);
                        return `Released ${r.count} lock(s)`;
                      }}
                      done={reload}
                    />
                  ),
                },
              ]
            : []),
        ]}
      />
      {!admin && who && (
        <p class="small muted">Only an admin may release a lock; your role is {who.role}.</p>
      )}
      <h2>Waiting on a lock</h2>
      {queue.error && <ErrorPanel error={queue.error} what="list the queue" />}
      <DataTable<Item>
        caption={`${waiting.length} queued item(s) wait for a lock`}
        rows={waiting}
        rowKey={(i) => i.item_id}
        empty="No queued item waits for a lock."
        columns={[
          { title: "Item", cell: (i) => <span class="mono small">{i.item_id}</span> },
          { title: "Task", cell: (i) => i.task_id ?? "—" },
          { title: "Waiting on", cell: (i) => i.waiting_on },
          {
            title: "Would lock",
            cell: (i) => ((i as Item & { lock_paths?: string[] }).lock_paths ?? []).map((p) => <code key={p}>{p} </code>),
          },
          { title: "Priority", num: true, cell: (i) => i.priority },
        ]}
      />
    </Page>
  );
}
