// Plugins and probes: every plugin the host loaded (kind, version, ABI, capabilities), every library it
// refused with the reason, so a plugin that silently went missing is visible here; and each probe's answer
// (what a run needing it would meet), with when it was probed and until when the answer holds.
import { api, ok, type paths, type Schemas } from "../api/client";
import { useApi } from "../api/use_api";
import { Badge } from "../components/badge";
import { DataTable } from "../components/data_table";
import { ErrorPanel } from "../components/error_panel";
import { Loading, Page } from "../components/page";
import { Time } from "../components/time";

type Answer = paths["/api/plugins"]["get"]["responses"][200]["content"]["application/json"];
type Plugin = Answer["plugins"][number];
type Refused = Answer["refused"][number];
type Probe = Schemas["ProbeAnswer"];

// One finding's value: a string as is, an object as "key=value" pairs, anything else as JSON.
function shown(v: unknown): string {
  if (typeof v === "string") return v;
  if (v && typeof v === "object" && !Array.isArray(v))
    return Object.entries(v)
      .map(([k, x]) => `${k}=${typeof x === "string" ? x : JSON.stringify(x)}`)
      .join(", ");
  return JSON.stringify(v);
}

// A probe's findings, as "key: value" lines.
function Findings({ c }: { c: Record<string, unknown> | undefined }) {
  const entries = Object.entries(c ?? {});
  if (!entries.length) return <span class="muted">—</span>;
  return (
    <ul class="facts-list small">
      {entries.map(([k, v]) => (
        <li key={k}>
          <span class="muted">{k}:</span> <span class="mono">{shown(v)}</span>
        </li>
      ))}
    </ul>
  );
}

// The probes: asked separately, as a probe may take a moment the first time (the server keeps its answer).
function Probes() {
  const probes = useApi(() => ok(api.GET("/api/probes")), []);
  return (
    <section aria-labelledby="probes-h">
      <div class="spread">
        <h2 id="probes-h">Probes</h2>
        <button type="button" onClick={probes.reload} disabled={probes.loading}>
          Ask the probes again
        </button>
      </div>
      <p class="small muted">
        What each probe found on this host. A status other than <code>ok</code> is what a run needing it is refused
        with. An answer is kept until it expires, so asking again within that time shows the kept answer.
      </p>
      {probes.error && <ErrorPanel error={probes.error} what="ask the probes" />}
      {!probes.data && !probes.error && <Loading what="the probes' answers" />}
      {probes.data && (
        <DataTable<Probe>
          caption={`${probes.data.count} probe(s)`}
          rows={probes.data.probes}
          rowKey={(p) => p.id}
          empty="No probe plugin is loaded."
          columns={[
            { title: "Probe", cell: (p) => <code>{p.id}</code> },
            {
              title: "Status",
              cell: (p) => (
                <span class={"badge " + (p.status === "ok" ? "ok" : p.status === "degraded" ? "warn" : "bad")}>{p.status}</span>
              ),
            },
            { title: "Found", cell: (p) => <Findings c={p.capabilities as Record<string, unknown>} /> },
            { title: "Why", cell: (p) => (p.message ? <span class="small">{p.message}</span> : <span class="muted">—</span>) },
            {
              title: "Probed",
              cell: (p) => (
                <>
                  <Time iso={p.probed_at} />
                  {p.cached ? <span class="small muted"> (kept)</span> : null}
                </>
              ),
            },
            { title: "Holds until", cell: (p) => <Time iso={p.expires_at} /> },
          ]}
        />
      )}
    </section>
  );
}

const kindOrder = ["runner", "gate", "probe", "retention_lane", "planner"];

export function PluginsPage() {
  const plugins = useApi(() => ok(api.GET("/api/plugins")), []);
  const list = [...(plugins.data?.plugins ?? [])].sort(
    (a, b) =>
      (kindOrder.indexOf(a.kind ?? "") + 1 || 99) - (kindOrder.indexOf(b.kind ?? "") + 1 || 99) ||
      (a.id ?? "").localeCompare(b.id ?? ""),
  );
  const refused = plugins.data?.refused ?? [];
  return (
    <Page
      title="Plugins and probes"
      actions={
        <button type="button" onClick={plugins.reload}>
          Refresh
        </button>
      }
    >
      {plugins.error && <ErrorPanel error={plugins.error} what="list the plugins" />}
      <h2>Refused</h2>
      <p class="small muted">
        Libraries of the plugin folder the host would not load when <code>cp-host serve</code> started; the others
        still load. Fix or remove the file, then restart serve.
      </p>
      <DataTable<Refused>
        caption={plugins.data ? `${refused.length} librar${refused.length === 1 ? "y" : "ies"} refused` : "Loading…"}
        rows={refused}
        rowKey={(r) => r.library + "\u0000" + r.id}
        empty="The host refused no plugin."
        columns={[
          { title: "Library", cell: (r) => <code>{r.library}</code> },
          { title: "Plugin", cell: (r) => (r.id ? <code>{r.id}</code> : <span class="muted">the whole library</span>) },
          { title: "State", cell: () => <span class="badge bad">refused</span> },
          { title: "Why", cell: (r) => <span data-testid="refusal-reason">{r.reason}</span> },
        ]}
      />
      <Probes />
      <h2>Loaded</h2>
      <DataTable<Plugin>
        caption={plugins.data ? `${list.length} plugin(s) loaded` : "Loading…"}
        rows={list}
        rowKey={(p) => `${p.kind}:${p.id}`}
        empty={plugins.loading ? "Loading…" : "No plugin is loaded."}
        columns={[
          {
            title: "Plugin",
            cell: (p) => (
              <>
                <code>{p.id}</code>
                <br />
                <span class="small muted mono">{p.library}</span>
              </>
            ),
          },
          { title: "Kind", cell: (p) => <Badge value={p.kind} /> },
          { title: "Version", cell: (p) => p.version ?? "—" },
          { title: "ABI", cell: (p) => p.abi ?? "—" },
          { title: "Capabilities", cell: (p) => [...(p.capabilities ?? []), ...(p.flags ?? [])].join(", ") || "—" },
          { title: "What it does", cell: (p) => <span class="small cell-wide">{p.description ?? ""}</span> },
        ]}
      />
    </Page>
  );
}
