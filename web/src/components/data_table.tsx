// A table with a caption (what it lists), column headers and a row per item; says so when empty.
import type { ComponentChildren } from "preact";

export type Column<T> = { title: string; cell(row: T): ComponentChildren; num?: boolean };

export function DataTable<T>({ caption, columns, rows, rowKey, empty }: {
  caption: string;
  columns: Column<T>[];
  rows: T[];
  rowKey(row: T): string;
  empty?: string;
}) {
  return (
    // Focusable, so a table wider than a narrow screen can be scrolled from the keyboard.
    <div class="table-wrap" tabIndex={0} role="region" aria-label={caption}>
      <table>
        <caption>{caption}</caption>
        <thead>
          <tr>
            {columns.map((c) => (
              <th scope="col" class={c.num ? "num" : ""} key={c.title}>
                {c.title}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.length === 0 ? (
            <tr>
              <td colSpan={columns.length} class="muted">
                {empty ?? "Nothing here yet."}
              </td>
            </tr>
          ) : (
            rows.map((r) => (
              <tr key={rowKey(r)}>
                {columns.map((c) => (
                  <td class={c.num ? "num" : ""} key={c.title}>
                    {c.cell(r)}
                  </td>
                ))}
              </tr>
            ))
          )}
        </tbody>
      </table>
    </div>
  );
}
