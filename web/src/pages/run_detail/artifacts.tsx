// The files the run left under artifacts/ (GET /api/runs/{id}/artifacts): images (a browser run's
// screenshots) shown as images, every other file a link that opens it (served redacted by the API). A
// symlink, FIFO or device is listed and never linked: the API refuses to follow one anyway.
import { api, ok } from "../../api/client";
import { useApi } from "../../api/use_api";
import { DataTable } from "../../components/data_table";
import { ErrorPanel } from "../../components/error_panel";
import { Loading } from "../../components/page";
import { artifactHref } from "./types";

const isImage = (media?: string) => !!media && /^image\/(png|jpeg|gif|webp)$/.test(media);

function size(n: number) {
  return n >= 1048576 ? `${(n / 1048576).toFixed(1)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`;
}

export function Artifacts({ runId, version }: { runId: string; version: number }) {
  const listing = useApi(() => ok(api.GET("/api/runs/{id}/artifacts", { params: { path: { id: runId } } })), [runId, version]);
  if (listing.error?.status === 404) return <p class="muted">No artifacts yet.</p>;
  if (listing.error) return <ErrorPanel error={listing.error} what="list the artifacts" />;
  const l = listing.data;
  if (!l) return <Loading what="the artifacts" />;
  const images = l.artifacts.filter((a) => a.type === "file" && isImage(a.media_type));
  return (
    <div data-testid="artifacts">
      {images.length > 0 && (
        <div class="shots">
          {images.map((a) => (
            <figure key={a.path}>
              <a href={artifactHref(runId, a.path)} target="_blank" rel="noopener">
                <img class="shot" src={artifactHref(runId, a.path)} alt={`Screenshot ${a.path}`} loading="lazy" />
              </a>
              <figcaption class="small mono">{a.path}</figcaption>
            </figure>
          ))}
        </div>
      )}
      <DataTable
        caption={`${l.count} file(s), ${size(l.total_bytes)}${l.truncated ? " (listing cut short)" : ""}`}
        rows={l.artifacts}
        rowKey={(a) => a.path}
        empty="The run left no artifacts."
        columns={[
          {
            title: "Path",
            cell: (a) =>
              a.type === "file" ? (
                <a href={artifactHref(runId, a.path)} target="_blank" rel="noopener" class="mono">
                  {a.path}
                </a>
              ) : (
                <span class="mono">{a.path}</span>
              ),
          },
          { title: "Kind", cell: (a) => (a.type === "file" ? a.media_type ?? "file" : `${a.type} (not opened)`) },
          { title: "Size", num: true, cell: (a) => size(a.size) },
        ]}
      />
    </div>
  );
}
