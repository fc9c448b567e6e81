// The roles a token or session has, lowest first, as the API ranks them.
export type Role = "viewer" | "operator" | "admin";
const rank: Record<string, number> = { viewer: 1, operator: 2, admin: 3 };

// Whether `role` may do what needs `need` (the API checks it again; this only hides what would be refused).
export function can(role: string | undefined, need: Role): boolean {
  return !!role && (rank[role] ?? 0) >= rank[need];
}
