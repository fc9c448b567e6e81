// A page's frame: its title (also the document title, so history and tabs say where one is) and body.
import type { ComponentChildren } from "preact";
import { useEffect } from "preact/hooks";

export function Page({ title, actions, children }: { title: string; actions?: ComponentChildren; children: ComponentChildren }) {
  useEffect(() => {
    document.title = `${title} · cp-host`;
  }, [title]);
  return (
    <>
      <div class="spread">
        <h1>{title}</h1>
        {actions && <div class="row">{actions}</div>}
      </div>
      {children}
    </>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p class="muted" role="status">
      Loading {what}…
    </p>
  );
}
