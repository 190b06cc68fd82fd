/**
 * The toolbar: where you are (breadcrumbs of the opened block), what the graph holds (nodes, params, FLOPs,
 * root errors: click to go to the next), a node search that jumps to and centres a node, edit buttons,
 * block expansion, layout and view controls, export and actions, and the panel toggles.
 */
import { useState } from "react";
import { compact } from "../doc";
import type { Panels } from "../hooks/useViewState";
import type { Direction } from "../layout";
import { failure } from "../protocol";
import { findNodes } from "../search";
import type { Sync } from "../sync";
import type { Doc } from "../types";

export type HeaderProps = {
  doc: Doc; sync: Sync; root: string | null; dir: Direction; rootErrors: string[]; panels: Panels;
  selected: Set<string>; actions: { name: string; doc: string }[];
  onRoot: (id: string | null) => void; onDir: (d: Direction) => void; onLayout: () => void; onFit: () => void;
  onFitSelection: () => void; onExpand: (depth: number) => void; onGroup: () => void; onUngroup: () => void;
  onDelete: () => void; onExport: (k: "svg" | "png") => void; onPython: () => void; onGo: (id: string) => void;
  onPanel: (name: keyof Panels) => void;
};

/** graph › block › inner block: the opened block's path, each step a way back. */
function Breadcrumbs({ doc, root, onRoot }: { doc: Doc; root: string | null; onRoot: (id: string | null) => void }) {
  const chain: string[] = [];
  for (let id = root; id !== null && doc.nodes[id]; id = doc.nodes[id].parent) chain.unshift(id);
  return (
    <nav className="gb-crumbs" aria-label="opened block">
      <button className="gb-crumb gb-title" onClick={() => onRoot(null)} disabled={root === null} data-crumb="">{doc.graph.name}</button>
      {chain.map((id) => (
        <span key={id}>
          <span className="gb-crumb-sep">›</span>
          <button className="gb-crumb" onClick={() => onRoot(id)} disabled={id === root} data-crumb={id}>{doc.nodes[id].name}</button>
        </span>
      ))}
    </nav>
  );
}

/** Find a node by name (anywhere, blocks included); Enter or a click jumps to it. */
function NodeSearch({ doc, onGo }: { doc: Doc; onGo: (id: string) => void }) {
  const [text, setText] = useState("");
  const [open, setOpen] = useState(false);
  const hits = open ? findNodes(doc, text) : [];
  const go = (id: string) => { onGo(id); setOpen(false); setText(""); };
  return (
    <div className="gb-find">
      <input className="gb-find-input" placeholder="find node (/)" value={text} aria-label="find node"
        onChange={(e) => { setText(e.target.value); setOpen(true); }} onFocus={() => setOpen(true)}
        onBlur={() => setTimeout(() => setOpen(false), 150)}
        onKeyDown={(e) => {
          if (e.key === "Enter" && hits.length) go(hits[0].id);
          if (e.key === "Escape") { setOpen(false); (e.target as HTMLInputElement).blur(); }
          e.stopPropagation();
        }} />
      {hits.length > 0 && (
        <div className="gb-find-list" role="listbox">
          {hits.map((n) => (
            <div key={n.id} className="gb-find-item" role="option" aria-selected={false} data-id={n.id} onMouseDown={() => go(n.id)}>
              <span>{n.name}</span> <span className="gb-muted">{n.op}{n.parent ? ` in ${n.parent}` : ""}</span>
            </div>
          ))}
        </div>
      )}
    </div>
  );
}

export function Header(p: HeaderProps) {
  const t = p.doc.totals;
  const has = p.selected.size > 0;
  const errors = p.rootErrors.length;
  const [next, setNext] = useState(0);
  return (
    <div className="gb-header">
      <Breadcrumbs doc={p.doc} root={p.root} onRoot={p.onRoot} />
      <span className="gb-totals" data-params={t.params} data-flops={t.flops ?? ""} data-errors={errors}>
        {t.nodes} nodes · {compact(t.params)} params · {compact(t.flops)} FLOPs
        {errors > 0 && (
          <button className="gb-errcount" title="go to the next error (nodes waiting on it are not counted)"
            onClick={() => { p.onGo(p.rootErrors[next % errors]); setNext(next + 1); }} data-action="next-error">
            {errors} error{errors > 1 ? "s" : ""}
          </button>
        )}
      </span>
      <NodeSearch doc={p.doc} onGo={p.onGo} />
      <span className="gb-spacer" />
      <span className="gb-group">
        <button title="undo (Ctrl+Z)" disabled={!p.sync.canUndo} onClick={() => p.sync.request("undo")} data-action="undo">↶</button>
        <button title="redo (Ctrl+Shift+Z)" disabled={!p.sync.canRedo} onClick={() => p.sync.request("redo")} data-action="redo">↷</button>
      </span>
      <span className="gb-group">
        <button title="group selection into a block (Ctrl+G)" disabled={!has} onClick={p.onGroup} data-action="group">Group</button>
        <button title="ungroup the selected block (Ctrl+Shift+G)" disabled={!has} onClick={p.onUngroup} data-action="ungroup">Ungroup</button>
        <button title="delete selection (Delete)" disabled={!has} onClick={p.onDelete} data-action="delete">Delete</button>
      </span>
      <select value="" title="expand or collapse blocks" data-action="expand" onChange={(e) => {
        const v = e.target.value;
        e.target.value = "";
        if (v !== "") p.onExpand(Number(v));
      }}>
        <option value="">Blocks…</option>
        <option value="99">expand all</option>
        <option value="1">expand 1 level</option>
        <option value="2">expand 2 levels</option>
        <option value="0">collapse all</option>
      </select>
      <span className="gb-group">
        <select value={p.dir} onChange={(e) => p.onDir(e.target.value as Direction)} title="layout direction">
          <option value="LR">left → right</option>
          <option value="TB">top ↓ down</option>
        </select>
        <button title="automatic layout (elkjs, layered; blocks at their real size) (L)" onClick={p.onLayout} data-action="layout">Layout</button>
        <button title="fit the graph in view (Shift+F)" onClick={p.onFit} data-action="fit">Fit</button>
        <button title="zoom to the selection (F)" disabled={!has} onClick={p.onFitSelection} data-action="fit-selection">Fit sel.</button>
      </span>
      <select value="" title="export" onChange={(e) => {
        const v = e.target.value;
        if (v === "svg" || v === "png") p.onExport(v);
        else if (v === "py") p.onPython();
        e.target.value = "";
      }} data-action="export">
        <option value="">Export…</option>
        <option value="svg">canvas as SVG</option>
        <option value="png">canvas as PNG</option>
        <option value="py">network as Python</option>
      </select>
      {p.actions.length > 0 && (
        <select value="" title="actions on the selection" onChange={(e) => {
          const name = e.target.value;
          e.target.value = "";
          if (name) p.sync.request("action", { name, selection: [...p.selected] }).then((m) => {
            const bad = failure(m);
            if (bad) p.sync.setNotice({ text: bad, kind: "error", nodes: [] });
          });
        }} data-action="actions">
          <option value="">Actions…</option>
          {p.actions.map((a) => <option key={a.name} value={a.name} title={a.doc}>{a.name}</option>)}
        </select>
      )}
      <span className="gb-group gb-toggles">
        <button title="show or hide the palette" aria-pressed={p.panels.palette} onClick={() => p.onPanel("palette")} data-panel="palette">◧</button>
        <button title="show or hide the inspector" aria-pressed={p.panels.inspector} onClick={() => p.onPanel("inspector")} data-panel="inspector">◨</button>
        <button title="show or hide the minimap" aria-pressed={p.panels.minimap} onClick={() => p.onPanel("minimap")} data-panel="minimap">▣</button>
      </span>
    </div>
  );
}
