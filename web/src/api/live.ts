// Live updates over server-sent events. serve names each event by its type, which EventSource can only
// listen to one name at a time, so the stream is read with fetch-event-source: every event whatever its
// name, the session cookie riding along (same origin), and on a drop a reconnect that resumes with
// Last-Event-ID, so no event is missed.
import { fetchEventSource } from "@microsoft/fetch-event-source";
import { useEffect, useRef, useState } from "preact/hooks";

export type LiveEvent = { id: string; name: string; data: Record<string, unknown> };

class Ended extends Error {}

// Calls onEvent for every event of the stream at `url` (null: no stream) until the stream says "end".
// Returns whether it is connected.
export function useLive(url: string | null, onEvent: (e: LiveEvent) => void): boolean {
  const [connected, setConnected] = useState(false);
  const handler = useRef(onEvent);
  handler.current = onEvent;
  useEffect(() => {
    if (!url) return;
    const stop = new AbortController();
    fetchEventSource(url, {
      signal: stop.signal,
      credentials: "same-origin",
      openWhenHidden: true,
      async onopen(r) {
        if (!r.ok) throw new Ended(`the event stream was refused (${r.status})`);
        setConnected(true);
      },
      onmessage(m) {
        let data: Record<string, unknown> = {};
        try {
          data = JSON.parse(m.data);
        } catch {
          data = { raw: m.data };
        }
        handler.current({ id: m.id, name: m.event || "message", data });
        if (m.event === "end") throw new Ended("the run ended");
      },
      onclose() {
        // serve closed the stream without saying "end" (it restarted, say): reconnect and resume.
        setConnected(false);
        throw new Error("the event stream closed");
      },
      onerror(e) {
        setConnected(false);
        if (e instanceof Ended) throw e;  // no retry: the stream is over or refused
        return 2000;  // retry in 2 s, resuming after the last event seen
      },
    }).catch(() => setConnected(false));
    return () => {
      stop.abort();
      setConnected(false);
    };
  }, [url]);
  return connected;
}
