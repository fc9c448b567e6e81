// The dashboard's pages, in the order the side bar lists them.
export const pages: { path: string; label: string }[] = [
  { path: "/", label: "Command tower" },
  { path: "/runs", label: "Runs" },
  { path: "/queue", label: "Queue" },
  { path: "/approvals", label: "Approvals" },
  { path: "/workflows", label: "Workflows" },
  { path: "/chains", label: "Chains" },
  { path: "/locks", label: "Locks" },
  { path: "/agents", label: "Agents and roles" },
  { path: "/plugins", label: "Plugins and probes" },
  { path: "/retention", label: "Retention" },
];
