// The pages beyond the command tower and the runs list, by URL (each page's file adds its own line).
import type { FunctionComponent } from "preact";
import { AgentsPage } from "./pages/agents";
import { LocksPage } from "./pages/locks";
import { PluginsPage } from "./pages/plugins";
import { RetentionPage } from "./pages/retention";
import { RunComparePage, RunDetailPage } from "./pages/run_detail";

export const routes: { path: string; component: FunctionComponent<any> }[] = [
  { path: "/runs/:id", component: RunDetailPage },
  { path: "/runs/:id/compare/:other", component: RunComparePage },
  { path: "/locks", component: LocksPage },
  { path: "/agents", component: AgentsPage },
  { path: "/plugins", component: PluginsPage },
  { path: "/retention", component: RetentionPage },
];
