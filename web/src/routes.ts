// The pages beyond the command tower and the runs list, by URL (each page's file adds its own line).
import type { FunctionComponent } from "preact";
import { AgentsPage } from "./pages/agents";
import { ApprovalsPage } from "./pages/approvals";
import { ChainPage, ChainsPage } from "./pages/chains";
import { LocksPage } from "./pages/locks";
import { PluginsPage } from "./pages/plugins";
import { QueuePage } from "./pages/queue";
import { RetentionPage } from "./pages/retention";
import { RunComparePage, RunDetailPage } from "./pages/run_detail";
import { WorkflowPage, WorkflowsPage } from "./pages/workflows";

export const routes: { path: string; component: FunctionComponent<any> }[] = [
  { path: "/runs/:id", component: RunDetailPage },
  { path: "/runs/:id/compare/:other", component: RunComparePage },
  { path: "/queue", component: QueuePage },
  { path: "/approvals", component: ApprovalsPage },
  { path: "/workflows", component: WorkflowsPage },
  { path: "/workflows/:id", component: WorkflowPage },
  { path: "/chains", component: ChainsPage },
  { path: "/chains/:id", component: ChainPage },
  { path: "/locks", component: LocksPage },
  { path: "/agents", component: AgentsPage },
  { path: "/plugins", component: PluginsPage },
  { path: "/retention", component: RetentionPage },
];
