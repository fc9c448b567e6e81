// A part of a page drawn from data the dashboard does not control (a run's bundle, a report a plugin wrote):
// when drawing it throws — a field of a shape the page did not expect — that part says so and the rest of
// the page stays, rather than the whole page going blank.
import { Component, type ComponentChildren } from "preact";

// `reset`: when it changes (the page's address), a part that failed is drawn again.
type Props = { what: string; reset?: unknown; children: ComponentChildren };

export class Guard extends Component<Props, { error?: unknown }> {
  state: { error?: unknown } = {};

  static getDerivedStateFromError(error: unknown) {
    return { error };
  }

  componentDidUpdate(previous: Props) {
    if (this.state.error !== undefined && previous.reset !== this.props.reset) this.setState({ error: undefined });
  }

  render() {
    if (this.state.error === undefined) return this.props.children;
    return (
      <div class="error" role="alert" data-testid="guard">
        <p>
          <strong>Could not show {this.props.what}</strong>: {String(this.state.error)}
        </p>
        <p>
          The data holds a value of a shape this page does not expect; the rest of the page is shown. Reload to try again;
          for a run, <code>cp-host runs verify</code> says whether its bundle was changed.
        </p>
      </div>
    );
  }
}
