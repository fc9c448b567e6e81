// Plugins and probes: every plugin the host loaded (kind, version, ABI, capabilities), every library it
// refused with the reason, so a plugin that silently went missing is visible here.
import { api, ok, type paths } from "../api/client";
import { useApi } from "../api/use_api";
import { Badge } from "../components/badge";
import { DataTable } from "../components/data_table";
import { ErrorPanel } from "../components/error_panel";
import { Page } from "../components/page";

type Answer = paths["/api/plugins"]["get"]["responses"][200]["content"]["application/json"];
type Plugin = Answer["plugins"][number];
type Refused = Answer["refused"][number];

const kindOrder = ["runner", "gate", "probe", "retention_lane"];

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
          { title: "State", cell: () => <Badge value="denied" label="refused" /> },
          { title: "Why", cell: (r) => <span data-testid="refusal-reason">{r.reason}</span> },
        ]}
      />
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
