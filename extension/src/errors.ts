/**
 * What each failing node's error means (pure; test/errors.test.ts). One mistake makes many nodes fail: the
 * nodes downstream of it fail because an input is invalid, and a block fails when a node inside does. Only the
 * *root* needs fixing; the others wait on it. Python's `gb.passes.root_of` draws the same line.
 *
 * - `root`: failing while its inputs are fine (red, counted in the header, offered fix-its).
 * - `waiting`: failing because an input fails; `root` says which root (grey, "waiting on ...").
 * - `inside`: a block failing because of a node inside it; `root` is that node (red when collapsed, the
 *   only place the user sees it; outlined when open, its inside shows the root).
 */
import type { Doc, NodeDoc } from "./types";

export type ErrorRole = { kind: "root" | "waiting" | "inside"; root: string };

/** The error role of every failing node, by id. */
export function errorRoles(doc: Doc): Map<string, ErrorRole> {
  const roles = new Map<string, ErrorRole>();
  const byParent = new Map<string, NodeDoc[]>();
  for (const n of Object.values(doc.nodes)) {
    if (n.parent !== null) {
      const list = byParent.get(n.parent);
      if (list) list.push(n);
      else byParent.set(n.parent, [n]);
    }
  }
  const visiting = new Set<string>();
  const roleOf = (n: NodeDoc): ErrorRole | undefined => {
    if (!n.error) return undefined;
    const known = roles.get(n.id);
    if (known) return known;
    if (visiting.has(n.id)) return { kind: "root", root: n.id }; // a malformed document: stop
    visiting.add(n.id);
    let role: ErrorRole = { kind: "root", root: n.id };
    const bad = n.inputs.map((ref) => (ref ? doc.nodes[ref[0]] : undefined)).find((s) => s?.error);
    if (bad) {
      role = { kind: "waiting", root: roleOf(bad)?.root ?? bad.id };
    } else if (n.isBlock) {
      const inner = (byParent.get(n.id) ?? []).map(roleOf).find((r) => r !== undefined);
      if (inner) role = { kind: "inside", root: inner.root };
    }
    visiting.delete(n.id);
    roles.set(n.id, role);
    return role;
  };
  for (const n of Object.values(doc.nodes)) roleOf(n);
  return roles;
}

/** The root errors, in document order (what the header counts and "next error" walks through). */
export function rootErrors(roles: Map<string, ErrorRole>): string[] {
  return [...roles].filter(([, r]) => r.kind === "root").map(([id]) => id);
}

export function sameRole(a: ErrorRole, b: ErrorRole): boolean {
  return a.kind === b.kind && a.root === b.root;
}
