// The pages beyond the command tower and the runs list, by URL (each page's file adds its own line).
import type { FunctionComponent } from "preact";
import { RunComparePage, RunDetailPage } from "./pages/run_detail";

export const routes: { path: string; component: FunctionComponent<any> }[] = [
  { path: "/runs/:id", component: RunDetailPage },
  { path: "/runs/:id/compare/:other", component: RunComparePage },
];
