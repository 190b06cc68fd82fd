/**
 * The Python-sync module: the confirmed document (as Python last sent it), the browser's pending patches,
 * and the view (pending patches re-applied on the confirmed document). Every browser -> Python message goes
 * through `send`, answers are matched by id. UI-only state (selection, layout, dialogs) lives in React.
 *
 * Rules (docs/widget-protocol.md): an update applies only on top of the version it was made from (else the
 * browser asks for a snapshot); after each update, pending patches are re-applied so no local edit is lost;
 * the reply to a patch drops it from pending and re-points later patches at renamed ids.
 *
 * Two kinds of listeners: `subscribe` (the editor: any change) and `subscribeNode(id)` (one node's drawing:
 * called only when what the node shows changed; `nodeView(id)` is then a new object), so an update
 * re-renders the touched nodes and their edges, not the whole canvas. A moved node is not "changed" here:
 * React Flow draws positions.
 */
import { applyChanges, applyOps, fromWire, remapOps, toWire } from "./doc";
import { KeyedListeners } from "./keyed";
import type { ErrorMsg, ReplyOf, RequestKind, Requests, SnapshotMsg } from "./protocol";
import type { Doc, NodeDoc, OpSchema, Patch, PatchOp, Reply, UpdateMsg, WireDoc } from "./types";

/** What a node's drawing depends on (its entry without the position): equal keys draw the same. */
export function drawnKey(n: NodeDoc): string {
  const { position: _, ...meta } = (n.meta ?? {}) as Record<string, unknown>;
  return JSON.stringify([n.name, n.op, n.parent, n.params, n.inputs, n.inputNames, n.variadic, n.outputs, n.error,
    n.errorNodes, n.numParams, n.flops, n.isBlock, n.pending ?? false, meta]);
}

/** What Sync needs of the anywidget model. */
export type Model = {
  get(key: "document"): unknown;
  set(key: "document", value: WireDoc): void;
  send(content: object): void;
  on(event: "msg:custom", cb: (msg: unknown) => void): void;
  off(event: "msg:custom", cb: (msg: unknown) => void): void;
};

export type Notice = { text: string; kind: "error" | "info"; nodes: string[] };
type Listener = () => void;
type Waiter = (msg: never) => void;
/** Requests whose payload is empty may leave it out. */
type PayloadArgs<K extends RequestKind> = Requests[K]["payload"] extends Record<string, never>
  ? [] | [Requests[K]["payload"]] : [Requests[K]["payload"]];
type Incoming = UpdateMsg | SnapshotMsg | ErrorMsg | { kind: string; replyTo?: string };

export class Sync {
  confirmed: Doc;
  pending: Patch[] = [];
  view: Doc;
  canUndo = false;
  canRedo = false;
  notice: Notice | null = null;
  private listeners = new Set<Listener>();
  private nodeListeners = new KeyedListeners((id) => this.shown.delete(id));
  private shown = new Map<string, { entry: NodeDoc; key: string }>();
  private waiting = new Map<string, Waiter>();
  private counter = 0;
  private saveTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly onMsg: (msg: unknown) => void;
  readonly session = Math.random().toString(36).slice(2, 8);

  constructor(private model: Model, private schemas: () => Record<string, OpSchema>) {
    const wire = model.get("document") as WireDoc | undefined;
    this.confirmed = fromWire(wire);
    this.canUndo = !!wire?.canUndo;
    this.canRedo = !!wire?.canRedo;
    this.view = this.confirmed;
    this.onMsg = (msg: unknown) => this.receive(msg);
    model.on("msg:custom", this.onMsg);
  }

  dispose() {
    this.model.off("msg:custom", this.onMsg);
    this.listeners.clear();
    this.nodeListeners.clear();
  }

  /** Call `fn` whenever node `id`'s entry in the view changes (or appears or goes). */
  subscribeNode(id: string, fn: Listener): () => void {
    return this.nodeListeners.subscribe(id, fn);
  }

  /** Node `id`'s entry as last shown: the same object until something it draws changes (not its position). */
  nodeView(id: string): NodeDoc | undefined {
    const entry = this.view.nodes[id];
    if (!entry) return undefined;
    const seen = this.shown.get(id);
    if (seen && seen.entry === entry) return seen.entry;
    const key = drawnKey(entry);
    if (seen && seen.key === key) return seen.entry;
    this.shown.set(id, { entry, key });
    return entry;
  }

  subscribe(fn: Listener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private emit() {
    const before = this.view.nodes;
    this.view = this.pending.reduce((doc, p) => applyOps(doc, p.ops, this.schemas()), this.confirmed);
    const after = this.view.nodes;
    if (after !== before) {
      for (const id of [...this.nodeListeners.keys()]) {
        if (before[id] === after[id]) continue;
        const seen = this.shown.get(id);
        if (seen && after[id] && this.nodeView(id) === seen.entry) continue; // only its position changed
        this.nodeListeners.notify(id);
      }
    }
    for (const fn of this.listeners) fn();
  }

  private nextId(prefix: string) {
    return `${prefix}-${this.session}-${++this.counter}`;
  }

  /** Send edits to Python (applied locally at once); resolves with Python's reply. A new edit clears the
   * notice about the last one (a refused wire, a failed op). */
  patch(ops: PatchOp[], record = true): Promise<Reply> {
    const p: Patch = { kind: "patch", id: this.nextId("p"), baseVersion: this.confirmed.version, ops, record };
    if (record && ops.length) this.notice = null;
    this.pending.push(p);
    this.model.send(p);
    this.emit();
    return new Promise((resolve) => this.waiting.set(p.id, resolve as Waiter));
  }

  /** A request/response message (protocol.ts `Requests`); resolves with its answer. Undo and redo clear the
   * notice: it was about a state they leave. */
  request<K extends RequestKind>(kind: K, ...args: PayloadArgs<K>): Promise<ReplyOf<K>> {
    const id = this.nextId(kind);
    if ((kind === "undo" || kind === "redo") && this.notice) this.setNotice(null);
    this.model.send({ kind, id, ...(args[0] ?? {}) });
    return new Promise<ReplyOf<K>>((resolve) => this.waiting.set(id, resolve as Waiter));
  }

  setNotice(notice: Notice | null) {
    this.notice = notice;
    this.view = { ...this.view }; // a new snapshot, so the editor re-renders (node entries stay shared)
    for (const fn of this.listeners) fn();
  }

  receive(raw: unknown) {
    if (!raw || typeof raw !== "object" || typeof (raw as { kind?: unknown }).kind !== "string") return;
    const msg = raw as Incoming;
    if (msg.kind === "update") this.onUpdate(msg as UpdateMsg);
    else if (msg.kind === "snapshot") {
      const snap = msg as SnapshotMsg;
      this.confirmed = fromWire(snap.document);
      this.canUndo = !!snap.canUndo;
      this.canRedo = !!snap.canRedo;
      this.emit();
    }
    const to = (msg as { replyTo?: string }).replyTo;
    if (to && this.waiting.has(to)) {
      (this.waiting.get(to) as (m: Incoming) => void)(msg);
      this.waiting.delete(to);
    }
    if (msg.kind === "error") this.setNotice({ text: (msg as ErrorMsg).message, kind: "error", nodes: [] });
  }

  private onUpdate(msg: UpdateMsg) {
    if (msg.base !== this.confirmed.version) {
      if (msg.version > this.confirmed.version) this.model.send({ kind: "sync", id: this.nextId("sync") });
    } else {
      this.confirmed = applyChanges(this.confirmed, msg.changes, msg.version);
    }
    this.canUndo = msg.canUndo;
    this.canRedo = msg.canRedo;
    const reply = msg.reply;
    if (reply) {
      const i = this.pending.findIndex((p) => p.id === reply.id);
      if (i >= 0) {
        this.pending.splice(i, 1);
        this.pending = this.pending.map((p) => ({ ...p, ops: remapOps(p.ops, reply.ids ?? {}) }));
      }
      if (reply.errors?.length) {
        const e = reply.errors[0];
        this.notice = { text: e.message, kind: "error", nodes: e.nodes ?? [] };
      }
      const waiter = this.waiting.get(reply.id) as ((r: Reply) => void) | undefined;
      if (waiter) {
        waiter(reply);
        this.waiting.delete(reply.id);
      }
    }
    this.emit();
    this.persist();
  }

  /** Keep the model's `document` current (not sent to Python) so a saved notebook holds the graph. */
  private persist() {
    if (this.saveTimer) clearTimeout(this.saveTimer);
    this.saveTimer = setTimeout(() => {
      this.saveTimer = null;
      try {
        this.model.set("document", { ...toWire(this.confirmed), canUndo: this.canUndo, canRedo: this.canRedo });
      } catch {
        /* a closed model: nothing to keep */
      }
    }, 300);
  }
}
