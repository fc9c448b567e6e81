// The run's event timeline: its events read in pages (GET /api/runs/{id}/events), then, while the run is not
// sealed, the run's own event stream from the last one read (?after_seq=N), each new event appended as it
// comes until the stream says `end`. The stream also ends when the run stops to await a human decision; the
// events a decision adds are read when the page reloads (`version`). Events are kept by sequence number, so
// a reconnect or a re-read that sends one again does not show it twice.
import { useEffect, useRef, useState } from "preact/hooks";
import { api, ok } from "../../api/client";
import { useLive, type LiveEvent } from "../../api/live";
import { ErrorPanel } from "../../components/error_panel";
import { Time } from "../../components/time";
import { num, str, type RunEvent } from "./types";

const PAGE = 500;
// Past this many events the page stops reading on its own; the operator asks for more.
const AUTO_LIMIT = 5000;

// One line about an event's payload: its short scalar fields, the way a log line would say them.
function gist(e: RunEvent): string {
  const p = e.payload ?? {};
  const parts: string[] = [];
  for (const [k, v] of Object.entries(p)) {
    if (v === null || typeof v === "object") continue;
    const s = String(v);
    if (/sha256|hash|^path$|prev/.test(k) || s.length > 120) continue;
    parts.push(`${k}=${s}`);
    if (parts.length >= 6) break;
  }
  return parts.join(" · ");
}

const tone = (type: string) =>
  /FAILED|DENIED|ERROR|REJECTED|TIMEOUT|CANCEL/.test(type) ? "bad" : /PASSED|SEALED|APPROVED|PROMOTED/.test(type) ? "ok" : "";

type Phase = "reading" | "live" | "paused" | "sealed";

export function Timeline({ runId, version, onChange }: { runId: string; version: number; onChange(ended: boolean): void }) {
  const [events, setEvents] = useState<RunEvent[]>([]);
  const [error, setError] = useState<unknown>();
  const [more, setMore] = useState(false);
  const [stream, setStream] = useState<string | null>(null);
  const [phase, setPhaseState] = useState<Phase>("reading");
  const phaseNow = useRef<Phase>("reading");
  const setPhase = (p: Phase) => {
    phaseNow.current = p;
    setPhaseState(p);
  };
  const last = useRef(0);
  const busy = useRef(false);
  const list = useRef<HTMLOListElement>(null);
  // Whether the list was scrolled to its end before the last events came: then it follows them.
  const following = useRef(true);

  const append = (batch: RunEvent[]) => {
    const fresh = batch.filter((e) => e.seq > last.current);
    if (!fresh.length) return;
    last.current = fresh[fresh.length - 1].seq;
    const l = list.current;
    following.current = !l || l.scrollHeight - l.scrollTop - l.clientHeight < 24;
    setEvents((old) => old.concat(fresh));
  };

  // Reads pages from the last event read until the log ends (or AUTO_LIMIT more were read), then goes live.
  const readPages = async (budget: number) => {
    if (busy.current) return;
    busy.current = true;
    setError(undefined);
    try {
      let read = 0;
      for (;;) {
        const page = await ok(
          api.GET("/api/runs/{id}/events", { params: { path: { id: runId }, query: { after_seq: last.current, limit: PAGE } } }),
        );
        const batch = ((page.events ?? []) as unknown[]).map(asEvent).filter((e): e is RunEvent => !!e);
        append(batch);
        read += batch.length;
        if (!page.more || !batch.length) {
          setMore(false);
          if (page.run_status === "sealed") setPhase("sealed");
          // Its stream would end at once: nothing happens until someone decides.
          else if (page.run_status === "awaiting_approval") setPhase("paused");
          else {
            setPhase("live");
            setStream(`/api/runs/${encodeURIComponent(runId)}/events/stream?after_seq=${last.current}`);
          }
          break;
        }
        if (read >= budget) {
          setMore(true);
          break;
        }
      }
    } catch (e) {
      setError(e);
    } finally {
      busy.current = false;
    }
  };

  useEffect(() => {
    last.current = 0;
    setEvents([]);
    setStream(null);
    setPhase("reading");
    setMore(false);
    readPages(AUTO_LIMIT);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [runId]);

  useEffect(() => {
    const l = list.current;
    if (l && following.current && phaseNow.current === "live") l.scrollTop = l.scrollHeight;
  }, [events]);

  // The page read the run again (an action, a decision): read what was appended since, unless the stream
  // brings it anyway.
  useEffect(() => {
    if (version > 0 && phaseNow.current !== "live" && phaseNow.current !== "reading") readPages(AUTO_LIMIT);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [version]);

  const live = useLive(stream, (m: LiveEvent) => {
    if (m.name === "end") {
      setStream(null);
      setPhase(m.data.status === "sealed" ? "sealed" : "paused");
      onChange(true);
      return;
    }
    const e = asEvent(m.data);
    if (!e) return;
    append([e]);
    onChange(false);
  });

  const state =
    phase === "sealed"
      ? "the run is sealed"
      : phase === "paused"
        ? "the run awaits a decision; its next events come with it"
        : phase === "live"
          ? live
            ? "live: new events appear as they happen"
            : "connecting to the live stream…"
          : "reading…";
  return (
    <section aria-labelledby="timeline-title">
      <h2 id="timeline-title">Events</h2>
      <p class="small muted" role="status" aria-live="polite" data-testid="timeline-state">
        {events.length} event(s) · {state}
      </p>
      {error !== undefined && <ErrorPanel error={error} what="read the run's events" />}
      <ol ref={list} class="timeline" data-testid="timeline" aria-label="Events of the run, oldest first" tabIndex={0}>
        {events.map((e) => (
          <li key={e.seq} class={tone(e.type)}>
            <span class="t">
              #{e.seq} · <Time iso={e.ts} />
            </span>{" "}
            <strong class="mono">{e.type}</strong> <span class="small">{gist(e)}</span>
          </li>
        ))}
      </ol>
      {more && (
        <button type="button" onClick={() => readPages(AUTO_LIMIT)}>
          Read more events
        </button>
      )}
    </section>
  );
}

function asEvent(v: unknown): RunEvent | undefined {
  if (!v || typeof v !== "object") return undefined;
  const o = v as Record<string, unknown>;
  const seq = num(o.seq);
  const type = str(o.type);
  if (seq === undefined || type === undefined) return undefined;
  const payload = o.payload && typeof o.payload === "object" ? (o.payload as Record<string, unknown>) : undefined;
  return { seq, type, ts: str(o.ts), payload };
}
