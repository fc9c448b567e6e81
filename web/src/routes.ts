// The pages beyond the command tower and the runs list, by URL (each page's file adds its own line).
import type { FunctionComponent } from "preact";
import { AgentsPage } from "./pages/agents";
import { LocksPage } from "./pages/locks";
import { PluginsPage } from "./pages/plugins";

export const routes: { path: string; component: FunctionComponent<any> }[] = [
  { path: "/locks", component: LocksPage },
  { path: "/agents", component: AgentsPage },
  { path: "/plugins", component: PluginsPage },
];
