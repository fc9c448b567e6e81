// The pages beyond the command tower and the runs list, by URL (each page's file adds its own line).
import type { FunctionComponent } from "preact";
import { QueuePage } from "./pages/queue";

export const routes: { path: string; component: FunctionComponent<any> }[] = [
  { path: "/queue", component: QueuePage },
];
