// The run's change (GET /api/runs/{id}/diff: the recorded patch parsed by the server): a list of the files,
// then each file's hunks with line numbers; added and removed lines carry their + and − marker as text as
// well as a colour (and the row's title says it), so the change reads the same without colour.
import { api, ApiError, ok, type Schemas } from "../../api/client";
import { useApi } from "../../api/use_api";
import { Badge } from "../../components/badge";
import { ErrorPanel } from "../../components/error_panel";
import { Loading } from "../../components/page";

type DiffFile = Schemas["RunDiff"]["files"][number];
type Hunk = NonNullable<DiffFile["hunks"]>[number];

const anchor = (i: number) => `diff-file-${i}`;

export function DiffView({ runId, version }: { runId: string; version: number }) {
  const diff = useApi(async () => {
    const d = await ok(api.GET("/api/runs/{id}/diff", { params: { path: { id: runId } } }));
    // The route also answers the patch as text (format=patch); this page asks for, and takes, only JSON.
    if (typeof d === "string") throw new ApiError(0, "client", "the diff came as text, not JSON");
    return d;
  }, [runId, version]);
  if (diff.error?.status === 404) return <p class="muted">No diff recorded (yet): the run has not reached its gates.</p>;
  if (diff.error) return <ErrorPanel error={diff.error} what="load the diff" />;
  const d = diff.data;
  if (!d) return <Loading what="the diff" />;
  if (!d.files.length) return <p class="muted">The run changed no file.</p>;
  const t = d.totals;
  return (
    <div data-testid="diff">
      <p class="small">
        {t.files ?? d.files.length} file(s), <span class="mono">+{t.added ?? 0}</span> added,{" "}
        <span class="mono">−{t.removed ?? 0}</span> removed{t.binary ? `, ${t.binary} binary` : ""}
        {d.truncated && " (too large: the rest is counted, not shown)"}.{" "}
        <a href={`/api/runs/${encodeURIComponent(runId)}/diff?format=patch`} target="_blank" rel="noopener">
          The patch as text
        </a>
      </p>
      <ul class="diff-files" aria-label="Changed files">
        {d.files.map((f, i) => (
          <li key={i}>
            <Badge value={f.status} /> <a href={`#${anchor(i)}`} class="mono">{f.path}</a>{" "}
            <span class="small mono">
              +{f.added} −{f.removed}
            </span>
          </li>
        ))}
      </ul>
      {d.files.map((f, i) => (
        <FileDiff key={i} file={f} id={anchor(i)} />
      ))}
    </div>
  );
}

function FileDiff({ file, id }: { file: DiffFile; id: string }) {
  return (
    <section class="diff-file" id={id} aria-label={`Changes to ${file.path}`}>
      <h3 class="mono">
        {file.old_path && file.old_path !== file.path ? `${file.old_path} → ${file.path}` : file.path}{" "}
        <span class="small">
          ({file.status}, +{file.added} −{file.removed}
          {file.old_mode && file.new_mode && file.old_mode !== file.new_mode ? `, mode ${file.old_mode} → ${file.new_mode}` : ""})
        </span>
      </h3>
      {file.binary ? (
        <p class="muted small">A binary file: its bytes are not shown.</p>
      ) : (
        <div class="diff" role="region" aria-label={`Hunks of ${file.path}`} tabIndex={0}>
          {(file.hunks ?? []).map((h, i) => (
            <HunkView key={i} hunk={h} />
          ))}
          {file.hunks_omitted && <div class="hunk">… more hunks, not shown</div>}
        </div>
      )}
    </section>
  );
}

function HunkView({ hunk }: { hunk: Hunk }) {
  let oldNo = hunk.old_start ?? 0;
  let newNo = hunk.new_start ?? 0;
  const head = `@@ -${hunk.old_start},${hunk.old_lines} +${hunk.new_start},${hunk.new_lines} @@${hunk.section ? " " + hunk.section : ""}`;
  return (
    <table class="hunk-lines">
      <thead>
        <tr class="hunk">
          <th scope="col" class="ln">
            <span class="sr-only">Old line</span>
          </th>
          <th scope="col" class="ln">
            <span class="sr-only">New line</span>
          </th>
          <th scope="colgroup" colSpan={2}>
            {head}
          </th>
        </tr>
      </thead>
      <tbody>
        {(hunk.lines ?? []).map((line, i) => {
          const mark = line.charAt(0);
          const text = line.slice(1);
          if (mark === "\\") {
            return (
              <tr key={i} class="note">
                <td class="ln" />
                <td class="ln" />
                <td class="mk" />
                <td>{line}</td>
              </tr>
            );
          }
          const kind = mark === "+" ? "add" : mark === "-" ? "del" : "ctx";
          const o = kind === "add" ? "" : String(oldNo++);
          const n = kind === "del" ? "" : String(newNo++);
          return (
            <tr key={i} class={kind} data-kind={kind} title={kind === "add" ? "added" : kind === "del" ? "removed" : undefined}>
              <td class="ln">{o}</td>
              <td class="ln">{n}</td>
              <td class="mk">{kind === "add" ? "+" : kind === "del" ? "-" : " "}</td>
              <td>{text}</td>
            </tr>
          );
        })}
        {hunk.lines_omitted && (
          <tr class="note">
            <td colSpan={4}>… more lines, not shown</td>
          </tr>
        )}
      </tbody>
    </table>
  );
}
