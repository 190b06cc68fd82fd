/**
 * Request/response messages of the protocol (docs/widget-protocol.md), typed: each request kind's payload and
 * the message that answers it. `Sync.request(kind, payload)` returns that answer's type, or `ErrorMsg` when
 * Python did not know the kind. Patches and their `update` replies are in types.ts.
 */
import type { Reply, WireDoc } from "./types";

/** A fix-it (graphbuilder/passes/fixits.py `Fix.to_json`): set params on a node, or insert an op on a wire. */
export type FixJson = { title: string; path: string[]; params: Record<string, unknown>; insert: string | null; port: number };

type Answer<K extends string, T> = { kind: K; replyTo: string } & T;
type Outcome<T> = ({ ok: true } & T) | { ok: false; message: string };

export type CopiedMsg = Answer<"copied", Outcome<{ fragment: unknown }>>;
export type ProbedMsg = Answer<"probed", { ok: boolean; targets: Record<string, Record<string, string>>; message?: string }>;
export type ExportedMsg = Answer<"exported", Outcome<{ source: string }>>;
export type ElkSourceMsg = Answer<"elk_source", Outcome<{ source: string }>>;
export type FixitsMsg = Answer<"fixits", { ok: boolean; root: string | null; fixes: FixJson[]; message?: string }>;
export type SnapshotMsg = { kind: "snapshot"; replyTo?: string; document: WireDoc; canUndo: boolean; canRedo: boolean };
/** Python's answer to a message it could not handle (an unknown kind). */
export type ErrorMsg = { kind: "error"; replyTo?: string; message: string };

/** Every request: what it sends besides `kind` and `id`, and what answers it. */
export type Requests = {
  undo: { payload: Record<string, never>; reply: Reply };
  redo: { payload: Record<string, never>; reply: Reply };
  action: { payload: { name: string; selection: string[] }; reply: Reply };
  apply_fix: { payload: { fix: FixJson }; reply: Reply };
  copy: { payload: { nodes: string[] }; reply: CopiedMsg };
  probe: { payload: { source: [string, number]; nodes?: string[] }; reply: ProbedMsg };
  export_python: { payload: Record<string, never>; reply: ExportedMsg };
  elk_source: { payload: Record<string, never>; reply: ElkSourceMsg };
  fixits: { payload: { node: string }; reply: FixitsMsg };
  sync: { payload: Record<string, never>; reply: SnapshotMsg };
};
export type RequestKind = keyof Requests;
export type ReplyOf<K extends RequestKind> = Requests[K]["reply"] | ErrorMsg;

/** The message text of a failed answer (an `ok: false` answer, an `ErrorMsg`, a reply with errors), or null. */
export function failure(msg: { ok?: boolean; message?: string; errors?: { message: string }[] } | ErrorMsg): string | null {
  if ("kind" in msg && msg.kind === "error") return msg.message;
  const m = msg as { ok?: boolean; message?: string; errors?: { message: string }[] };
  if (m.errors?.length) return m.errors[0].message;
  if (m.ok === false) return m.message ?? "failed";
  return null;
}
