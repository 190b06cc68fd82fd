/**
 * The notices at the bottom of the canvas. The last message (a refused wire, a failed edit, "copied"), which
 * the next edit, undo or redo clears; and, for a selected failing node, its root error with one-click fix-its
 * (Python tried each on a copy of the graph: only fixes that make it fit are offered), or, for a node that
 * only waits on another's error, a link to that root.
 */
import { useState } from "react";
import type { ErrorRole } from "../errors";
import type { Fixits } from "../hooks/useFixits";
import type { FixJson } from "../protocol";
import type { Notice } from "../sync";
import type { NodeDoc } from "../types";

export type NoticeProps = {
  node: NodeDoc | null;
  role: ErrorRole | undefined;
  fixits: Fixits | null;
  notice: Notice | null;
  nameOf: (id: string) => string;
  onFix: (fix: FixJson) => void;
  onGo: (id: string) => void;
  onDismiss: () => void;
};

export function NoticeBar(p: NoticeProps) {
  const { notice, onDismiss } = p;
  return (
    <div className="gb-notices">
      {notice && (
        <div className={`gb-notice gb-notice-${notice.kind}`} role={notice.kind === "error" ? "alert" : "status"} onClick={onDismiss}>
          {notice.text}
        </div>
      )}
      <NodeNotice {...p} />
    </div>
  );
}

function NodeNotice({ node, role, fixits, nameOf, onFix, onGo }: NoticeProps) {
  const [closed, setClosed] = useState<string | null>(null); // the node + error the user closed the notice of
  const key = node ? `${node.id}\u0000${node.error}` : null;
  if (node?.error && role && closed !== key) {
    const close = <button className="gb-close" title="hide (select the node again to show)" onClick={() => setClosed(key)}>×</button>;
    if (role.kind === "waiting") {
      return (
        <div className="gb-notice gb-notice-wait" role="status" data-node={node.id}>
          <span>{node.name} is waiting on <b>{nameOf(role.root)}</b>: fix that first.</span>
          <button onClick={() => onGo(role.root)} data-action="go-root">Go to {nameOf(role.root)}</button>
          {close}
        </div>
      );
    }
    const root = role.kind === "inside" ? role.root : node.id;
    const message = role.kind === "inside" ? `inside ${node.name}: ${nameOf(root)}` : null;
    return (
      <div className="gb-notice gb-notice-error gb-fixits" role="alert" data-node={node.id}>
        <div className="gb-row gb-notice-head">
          <div className="gb-notice-text" title={node.error}>{message && <b>{message}: </b>}{node.error}</div>
          {close}
        </div>
        <div className="gb-row gb-fix-row">
          {fixits?.loading && <span className="gb-muted">finding fixes…</span>}
          {fixits && !fixits.loading && !fixits.fixes.length && <span className="gb-muted">no automatic fix found</span>}
          {fixits?.fixes.map((f, i) => (
            <button key={f.title} className="gb-fix" data-fix={i} title="try it on a copy: it makes the graph fit" onClick={() => onFix(f)}>
              Fix: {f.title}
            </button>
          ))}
          {role.kind === "inside" && <button onClick={() => onGo(root)} data-action="go-root">Go to {nameOf(root)}</button>}
        </div>
      </div>
    );
  }
  return null;
}
