/**
 * Finding things by typing (pure; test/search.test.ts): ops for the adder and the palette, nodes for the
 * search box. Matches rank exact, then prefix, then word prefix (after `_` or `/`), then anywhere in the name,
 * then in the doc or path; among equal kinds of match, shorter names first (the nearest completion), then
 * their order. So "ad" gives `add` before `adaptive_avg_pool2d` before `multihead_attention`.
 */
import type { Doc, NodeDoc, OpSchema } from "./types";

/** How well `name` matches `query` (lower is better; the integer part is the kind of match), or null for
 * no match. `extra` is searched last. */
export function matchRank(name: string, query: string, extra = ""): number | null {
  const q = query.trim().toLowerCase();
  if (!q) return 5;
  const n = name.toLowerCase();
  const shorter = Math.min(n.length, 999) / 1000;
  if (n === q) return 0;
  if (n.startsWith(q)) return 1 + shorter;
  if (n.split(/[_/\s.-]/).some((w) => w.startsWith(q))) return 2 + shorter;
  if (n.includes(q)) return 3 + shorter;
  if (extra.toLowerCase().includes(q)) return 4;
  return null;
}

function ranked<T>(items: T[], rank: (item: T) => number | null): T[] {
  const scored: [number, number, T][] = [];
  items.forEach((item, i) => {
    const r = rank(item);
    if (r !== null) scored.push([r, i, item]);
  });
  return scored.sort((a, b) => a[0] - b[0] || a[1] - b[1]).map((s) => s[2]);
}

/** Ops matching `query` by name (then category or doc), best first; advanced ops only when `advanced`. */
export function rankOps(ops: OpSchema[], query: string, advanced: boolean): OpSchema[] {
  return ranked(ops.filter((o) => advanced || !o.advanced), (o) => matchRank(o.name, query, `${o.category} ${o.doc}`));
}

/** Nodes whose name matches `query` (then op or path), best first, at most `limit`. */
export function findNodes(doc: Doc, query: string, limit = 8): NodeDoc[] {
  if (!query.trim()) return [];
  return ranked(Object.values(doc.nodes), (n) => matchRank(n.name, query, `${n.op} ${n.id}`)).slice(0, limit);
}
