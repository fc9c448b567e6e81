// A button for an action that changes something: it asks first (a modal dialog, with the fields the action
// needs, such as a reason or a branch), then does it and shows the outcome beside the button.
import type { ComponentChildren } from "preact";
import { useRef, useState } from "preact/hooks";
import { ErrorPanel } from "./error_panel";

export type Field = { name: string; label: string; required?: boolean; value?: string; placeholder?: string };

type Props = {
  label: string;
  title: string;                 // the question the dialog asks
  explain?: ComponentChildren;   // what will happen
  fields?: Field[];
  danger?: boolean;
  act(values: Record<string, string>): Promise<string | void>;  // the outcome to show, if any
  done?(): void;                 // after success (reload the page's data, say)
};

export function ActionButton({ label, title, explain, fields = [], danger, act, done }: Props) {
  const dialog = useRef<HTMLDialogElement>(null);
  const [values, setValues] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  const [outcome, setOutcome] = useState<string>();
  const id = label.toLowerCase().replace(/[^a-z0-9]+/g, "-");

  const open = () => {
    setValues(Object.fromEntries(fields.map((f) => [f.name, f.value ?? ""])));
    setError(undefined);
    setOutcome(undefined);
    dialog.current?.showModal();
  };
  const confirm = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const said = await act(values);
      dialog.current?.close();
      setOutcome(said || `${label}: done`);
      done?.();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <span class="action">
      <button type="button" class={danger ? "danger" : ""} onClick={open}>
        {label}
      </button>
      <dialog ref={dialog} aria-labelledby={`${id}-title`}>
        <form method="dialog" onSubmit={confirm}>
          <h2 id={`${id}-title`}>{title}</h2>
          {explain && <p>{explain}</p>}
          {fields.map((f) => (
            <p key={f.name}>
              <label>
                {f.label}
                <input
                  name={f.name}
                  required={f.required}
                  placeholder={f.placeholder}
                  value={values[f.name] ?? ""}
                  onInput={(ev) => setValues({ ...values, [f.name]: (ev.target as HTMLInputElement).value })}
                />
              </label>
            </p>
          ))}
          {error !== undefined && <ErrorPanel error={error} what={label.toLowerCase()} />}
          <div class="row">
            <button type="submit" class={danger ? "danger" : "primary"} disabled={busy}>
              {busy ? "Working…" : `Yes, ${label.toLowerCase()}`}
            </button>
            <button type="button" onClick={() => dialog.current?.close()}>
              Cancel
            </button>
          </div>
        </form>
      </dialog>
      {outcome && (
        <span class="notice small" role="status">
          {outcome}
        </span>
      )}
    </span>
  );
}
