/**
 * The editor: toolbar and header, palette, React Flow canvas, inspector. It reads the document from the
 * Sync module and turns user gestures into patch ops; layout, forms and conversions are pure modules.
 */
import {
  Background, Controls, MiniMap, ReactFlow, useReactFlow, getNodesBounds, getViewportForBounds,
  type Connection, type Edge, type EdgeChange, type NodeChange, type OnConnectStartParams,
} from "@xyflow/react";
import { toPng, toSvg } from "html-to-image";
import { useCallback, useEffect, useMemo, useRef, useState, useSyncExternalStore } from "react";
import { compact, cycleReason, freeName, joinId } from "../doc";
import { initialParams } from "../forms";
import { inPorts, isExpanded, newCache, nodeHeight, NODE_W, outPorts, positionOf, toFlow, visibleNodes, type XY } from "../flow";
import { layout, placeNear, QUICK_ABOVE, quickLayout, workerElk, type Box, type Direction, type Wire } from "../layout";
import type { Sync } from "../sync";
import type { Doc, EdgeStyle, HighlightStyle, NodeDoc, OpSchema, PatchOp } from "../types";
import { EditorContext, edgeTypes, nodeTypes, SyncContext } from "./nodes";
import { DRAG_TYPE, Inspector, Palette } from "./panels";

declare global {
  interface Window { __graphbuilderClipboard?: unknown }
}

export type EditorProps = {
  sync: Sync;
  ops: OpSchema[];
  highlights: Record<string, HighlightStyle>;
  edgeStyles: EdgeStyle[];
  actions: { name: string; doc: string }[];
  direction: Direction;
  height: number;
  dark: boolean;
};

function useDoc(sync: Sync): Doc {
  return useSyncExternalStore((fn) => sync.subscribe(fn), () => sync.view);
}

/** Quick-layout positions for every shown level over `QUICK_ABOVE` nodes where no node has a position. */
function quickPositions(doc: Doc, dir: Direction): Record<string, XY> {
  const out: Record<string, XY> = {};
  const levels = new Map<string | null, NodeDoc[]>();
  for (const n of visibleNodes(doc)) {
    const level = levels.get(n.parent);
    if (level) level.push(n);
    else levels.set(n.parent, [n]);
  }
  for (const [parent, level] of levels) {
    if (level.length <= QUICK_ABOVE || level.some((n) => positionOf(n, {}))) continue;
    const { boxes, wires } = levelGraph(doc, parent);
    const dx = parent === null ? 0 : 24;
    const dy = parent === null ? 0 : 44;
    for (const [id, p] of Object.entries(quickLayout(boxes, wires, dir))) out[id] = { x: p.x + dx, y: p.y + dy };
  }
  return out;
}

/** Boxes and wires of the nodes directly inside `parent` (null: top level), for layout. */
function levelGraph(doc: Doc, parent: string | null): { boxes: Box[]; wires: Wire[] } {
  const boxes: Box[] = [];
  const wires: Wire[] = [];
  for (const n of Object.values(doc.nodes)) {
    if (n.parent !== parent) continue;
    boxes.push({ id: n.id, width: NODE_W, height: nodeHeight(n), inPorts: inPorts(n), outPorts: outPorts(n) });
    n.inputs.forEach((ref, port) => { if (ref) wires.push({ source: ref[0], sourcePort: ref[1], target: n.id, targetPort: port }); });
  }
  return { boxes, wires };
}

function download(url: string, filename: string) {
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  a.click();
}

export function Editor(props: EditorProps) {
  const { sync, ops, highlights, edgeStyles, direction, height, dark } = props;
  const doc = useDoc(sync);
  const flow = useReactFlow();
  const schemas = useMemo(() => Object.fromEntries(ops.map((o) => [o.name, o])), [ops]);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [selectedEdges, setSelectedEdges] = useState<Set<string>>(new Set());
  const [dragging, setDragging] = useState<Record<string, XY>>({});
  // Big levels without positions get the linear-time layout before the first render: drawn once, in place.
  const [auto, setAuto] = useState<Record<string, XY>>(() => quickPositions(sync.view, direction));
  const [ready, setReady] = useState(false);
  const [fittedView, setFittedView] = useState(false);
  const [refusals, setRefusals] = useState<Record<string, Record<string, string>>>({});
  const [reason, setReason] = useState<string | null>(null);
  const [adder, setAdder] = useState<{ x: number; y: number; screen: XY } | null>(null);
  const [python, setPython] = useState<string | null>(null);
  const [dir, setDir] = useState<Direction>(direction);
  const cache = useRef(newCache());
  const root = useRef<HTMLDivElement>(null);
  const laying = useRef(false);
  const fitted = useRef(false);

  // ELK's worker script comes from Python on first use (it is not in the bundle).
  const elk = useMemo(() => workerElk(() => sync.request("elk_source").then((m) => (m?.ok ? m.source as string : null))), [sync]);

  useEffect(() => { // handles for benchmarks and debugging in the browser console
    if (root.current) Object.assign(root.current, { __gbSync: sync, __gbFlow: flow });
  }, [sync, flow]);

  // -- automatic positions for nodes that have none ---------------------------------------------------------
  useEffect(() => {
    if (laying.current) return;
    const shown = visibleNodes(doc);
    const missing = shown.filter((n) => !positionOf(n, auto));
    if (!missing.length) {
      if (!ready) setReady(true);
      return;
    }
    const parents = [...new Set(missing.map((n) => n.parent))];
    laying.current = true;
    (async () => {
      const found: Record<string, XY> = {};
      for (const parent of parents) {
        const level = shown.filter((n) => n.parent === parent);
        const placed = level.filter((n) => positionOf(n, auto));
        if (!placed.length) {
          const { boxes, wires } = levelGraph(doc, parent);
          const pos = boxes.length > QUICK_ABOVE ? quickLayout(boxes, wires, dir) : await layout(boxes, wires, dir, elk);
          const dy = parent === null ? 0 : 44;
          const dx = parent === null ? 0 : 24;
          for (const [id, p] of Object.entries(pos)) found[id] = { x: p.x + dx, y: p.y + dy };
        } else {
          level.filter((n) => !positionOf(n, auto)).forEach((n, i) => {
            const src = n.inputs.find((r) => r);
            const at = src ? positionOf(doc.nodes[src[0]], { ...auto, ...found }) : undefined;
            found[n.id] = placeNear(at, dir, i);
          });
        }
      }
      laying.current = false;
      setAuto((a) => ({ ...a, ...found }));
      const positions: Record<string, [number, number]> = {};
      for (const [id, p] of Object.entries(found)) if (sync.view.nodes[id] && !sync.view.nodes[id].pending) positions[id] = [p.x, p.y];
      if (Object.keys(positions).length) sync.patch([{ op: "move", positions }], false); // keep them, not an undo step
    })();
  }, [doc, auto, dir, ready, sync, elk]);

  useEffect(() => {
    if (ready && !fitted.current) {
      fitted.current = true;
      // data-gb-ready: laid out and fitted (what benchmarks and tests wait for). React Flow applies the
      // fit on its next store update; the promise resolves once the viewport is set.
      requestAnimationFrame(() => { flow.fitView({ padding: 0.1, duration: 0 }).then(() => setFittedView(true)); });
    }
  }, [ready, flow]);

  useEffect(() => { // positions made before the first render are kept in node meta too (not an undo step)
    const initial = Object.entries(auto).filter(([id]) => !sync.view.nodes[id]?.meta?.position);
    if (!initial.length) return;
    const timer = setTimeout(() => {
      const positions: Record<string, [number, number]> = {};
      for (const [id, p] of initial) if (sync.view.nodes[id] && !sync.view.nodes[id].meta?.position) positions[id] = [p.x, p.y];
      if (Object.keys(positions).length) sync.patch([{ op: "move", positions }], false);
    }, 0);
    return () => clearTimeout(timer);
  }, [sync]); // eslint-disable-line react-hooks/exhaustive-deps -- once, for the first render's positions

  useEffect(() => { // nodes that went (undo, Python edits) leave the selection
    if ([...selected].some((id) => !doc.nodes[id])) setSelected(new Set([...selected].filter((id) => doc.nodes[id])));
  }, [doc, selected]);

  const vertical = dir === "TB";
  const { nodes, edges } = useMemo(
    () => toFlow({ doc, auto, dragging, selected, highlights, edgeStyles, vertical }, cache.current),
    [doc, auto, dragging, selected, highlights, edgeStyles, vertical],
  );

  // -- gestures -> patches --------------------------------------------------------------------------------------
  const patch = useCallback((o: PatchOp[]) => sync.patch(o), [sync]);

  const addOp = useCallback((opName: string, at?: XY, parent: string | null = null) => {
    const schema = schemas[opName];
    if (!schema) return;
    const name = freeName(sync.view, opName, parent);
    const position: [number, number] = at ? [at.x, at.y] : [40, 40];
    patch([{ op: "add", opName, name, params: initialParams(schema), position, parent }]);
    setSelected(new Set([joinId(parent, name)]));
  }, [schemas, sync, patch]);

  const addFromPalette = useCallback((op: string) => {
    const box = root.current?.getBoundingClientRect();
    addOp(op, flow.screenToFlowPosition({ x: (box?.left ?? 0) + 400, y: (box?.top ?? 0) + 200 }));
  }, [addOp, flow]);

  const onNodesChange = useCallback((changes: NodeChange[]) => {
    let sel: Set<string> | null = null;
    const drag: Record<string, XY> = {};
    for (const c of changes) {
      if (c.type === "select") {
        sel = sel ?? new Set(selected);
        if (c.selected) sel.add(c.id);
        else sel.delete(c.id);
      } else if (c.type === "position" && c.position) {
        drag[c.id] = c.position;
      }
    }
    if (sel) setSelected(sel);
    if (Object.keys(drag).length) setDragging((d) => ({ ...d, ...drag }));
  }, [selected]);

  const onNodeDragStop = useCallback((_: unknown, __: unknown, moved: { id: string; position: XY }[]) => {
    const positions: Record<string, [number, number]> = {};
    for (const n of moved) positions[n.id] = [Math.round(n.position.x), Math.round(n.position.y)];
    setDragging({});
    if (Object.keys(positions).length) patch([{ op: "move", positions }]);
  }, [patch]);

  const handleOf = (h: string | null | undefined) => Number((h ?? "x-0").split("-")[1]);

  const onConnectStart = useCallback((_: unknown, params: OnConnectStartParams) => {
    setRefusals({});
    if (!params.nodeId || params.handleType !== "source") return;
    sync.request("probe", { source: [params.nodeId, handleOf(params.handleId)] }).then((msg) => setRefusals(msg.targets ?? {}));
  }, [sync]);

  const refusal = useCallback((c: Connection | Edge): string | null => {
    const view = sync.view;
    const s = view.nodes[c.source];
    const t = view.nodes[c.target];
    if (!s || !t) return "unknown node";
    if (s.parent !== t.parent) return "nodes in different blocks: connect to the block's ports";
    const cyc = cycleReason(view, c.source, c.target);
    if (cyc) return cyc;
    const port = handleOf(c.targetHandle);
    return refusals[c.target]?.[String(port)] ?? null;
  }, [sync, refusals]);

  const isValidConnection = useCallback((c: Connection | Edge) => {
    const r = refusal(c);
    setReason(r);
    return r === null;
  }, [refusal]);

  const onConnect = useCallback((c: Connection) => {
    setReason(null);
    if (refusal(c)) return;
    patch([{ op: "connect", source: [c.source, handleOf(c.sourceHandle)], target: [c.target, handleOf(c.targetHandle)] }]);
  }, [patch, refusal]);

  const onConnectEnd = useCallback(() => {
    setReason((r) => {
      if (r) sync.setNotice({ text: `not connected: ${r}`, kind: "error", nodes: [] });
      return null;
    });
    setRefusals({});
  }, [sync]);

  const onEdgesDelete = useCallback((gone: Edge[]) => {
    patch(gone.map((e) => ({ op: "disconnect", target: [e.target, handleOf(e.targetHandle)] }) as PatchOp));
  }, [patch]);

  const onEdgesChange = useCallback((changes: EdgeChange[]) => {
    const next = new Set(selectedEdges);
    let touched = false;
    for (const c of changes) {
      if (c.type !== "select") continue;
      touched = true;
      if (c.selected) next.add(c.id);
      else next.delete(c.id);
    }
    if (touched) setSelectedEdges(next);
  }, [selectedEdges]);

  const removeSelected = useCallback(() => {
    const ids = [...selected].filter((id) => sync.view.nodes[id]);
    const cut = edges.filter((e) => selectedEdges.has(e.id) && !ids.includes(e.target));
    const ops: PatchOp[] = cut.map((e) => ({ op: "disconnect", target: [e.target, handleOf(e.targetHandle)] }) as PatchOp);
    if (ids.length) ops.push({ op: "remove", nodes: ids });
    if (ops.length) patch(ops);
    setSelected(new Set());
    setSelectedEdges(new Set());
  }, [selected, selectedEdges, edges, sync, patch]);

  const toggleBlock = useCallback((id: string) => {
    const n = sync.view.nodes[id];
    if (!n) return;
    patch([{ op: "meta", node: id, meta: { expanded: isExpanded(n) ? null : true } }]);
  }, [sync, patch]);

  const group = useCallback(() => {
    const ids = [...selected];
    if (ids.length) sync.patch([{ op: "group", nodes: ids }]).then((r) => setSelected(new Set(r.created.slice(0, 1))));
  }, [selected, sync]);

  const ungroup = useCallback((id?: string) => {
    const target = id ?? [...selected].find((s) => sync.view.nodes[s]?.isBlock);
    if (target) sync.patch([{ op: "ungroup", node: target }]).then((r) => setSelected(new Set(r.created)));
  }, [selected, sync]);

  const copy = useCallback(async () => {
    const ids = [...selected].filter((id) => sync.view.nodes[id]);
    if (!ids.length) return;
    const msg = await sync.request("copy", { nodes: ids });
    if (!msg.ok) return sync.setNotice({ text: msg.message, kind: "error", nodes: [] });
    window.__graphbuilderClipboard = msg.fragment;
    // Also to the system clipboard, without waiting: a permission prompt may never be answered.
    try { navigator.clipboard?.writeText(JSON.stringify(msg.fragment)).catch(() => {}); } catch { /* no clipboard API */ }
    sync.setNotice({ text: `copied ${ids.length} node(s)`, kind: "info", nodes: [] });
  }, [selected, sync]);

  const paste = useCallback(async () => {
    let fragment = window.__graphbuilderClipboard;
    if (!fragment) {
      try { fragment = JSON.parse((await navigator.clipboard?.readText()) ?? ""); } catch { fragment = undefined; }
    }
    if (!fragment) return sync.setNotice({ text: "nothing to paste: copy nodes first (Ctrl+C)", kind: "info", nodes: [] });
    const r = await sync.patch([{ op: "paste", fragment, offset: [48, 48] }]);
    setSelected(new Set(r.created));
  }, [sync]);

  const runLayout = useCallback(async (d: Direction = dir) => {
    const view = sync.view;
    const positions: Record<string, [number, number]> = {};
    const parents = [null, ...Object.values(view.nodes).filter((n) => isExpanded(n)).map((n) => n.id)];
    for (const parent of parents) {
      const { boxes, wires } = levelGraph(view, parent);
      const pos = await layout(boxes, wires, d, elk);
      for (const [id, p] of Object.entries(pos)) positions[id] = [Math.round(p.x + (parent ? 24 : 0)), Math.round(p.y + (parent ? 44 : 0))];
    }
    await sync.patch([{ op: "move", positions }]);
    requestAnimationFrame(() => flow.fitView({ padding: 0.1 }));
  }, [dir, sync, flow, elk]);

  const exportImage = useCallback(async (kind: "svg" | "png") => {
    const el = root.current?.querySelector(".react-flow__viewport") as HTMLElement | null;
    if (!el) return;
    const bounds = getNodesBounds(flow.getNodes());
    const w = Math.min(4096, Math.max(200, bounds.width + 80));
    const h = Math.min(4096, Math.max(200, bounds.height + 80));
    const vp = getViewportForBounds(bounds, w, h, 0.05, 2, 0.05);
    const opts = { backgroundColor: dark ? "#111" : "#fff", width: w, height: h,
      style: { width: `${w}px`, height: `${h}px`, transform: `translate(${vp.x}px, ${vp.y}px) scale(${vp.zoom})` } };
    const url = kind === "svg" ? await toSvg(el, opts) : await toPng(el, opts);
    if (root.current) root.current.dataset.gbExport = url.slice(0, 32);
    download(url, `${sync.view.graph.name}.${kind}`);
  }, [flow, dark, sync]);

  const exportPython = useCallback(async () => {
    const msg = await sync.request("export_python");
    if (!msg.ok) return sync.setNotice({ text: msg.message, kind: "error", nodes: [] });
    setPython(msg.source);
  }, [sync]);

  const onKeyDown = useCallback((e: React.KeyboardEvent) => {
    // Bare modifier keys go on to React Flow's document listeners (Shift: box select, Ctrl: multi-select).
    if (e.key === "Shift" || e.key === "Control" || e.key === "Meta" || e.key === "Alt") return;
    const t = e.target as HTMLElement;
    const typing = t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT";
    const mod = e.ctrlKey || e.metaKey;
    let done = true;
    if (typing) done = false;
    else if (mod && e.key.toLowerCase() === "z" && e.shiftKey) sync.request("redo");
    else if (mod && e.key.toLowerCase() === "z") sync.request("undo");
    else if (mod && e.key.toLowerCase() === "y") sync.request("redo");
    else if (mod && e.key.toLowerCase() === "c") copy();
    else if (mod && e.key.toLowerCase() === "v") paste();
    else if (mod && e.key.toLowerCase() === "g" && e.shiftKey) ungroup();
    else if (mod && e.key.toLowerCase() === "g") group();
    else if (mod && e.key.toLowerCase() === "a") setSelected(new Set(visibleNodes(sync.view).map((n) => n.id)));
    else if (e.key === "Delete" || e.key === "Backspace") removeSelected();
    else if (e.key === "Escape") { setAdder(null); setSelected(new Set()); }
    else done = false;
    e.stopPropagation(); // keep JupyterLab's notebook shortcuts out of the canvas
    if (done) e.preventDefault();
  }, [sync, copy, paste, group, ungroup, removeSelected]);

  const onDrop = useCallback((e: React.DragEvent) => {
    const op = e.dataTransfer.getData(DRAG_TYPE) || e.dataTransfer.getData("text/plain");
    if (!op || !schemas[op]) return;
    e.preventDefault();
    addOp(op, flow.screenToFlowPosition({ x: e.clientX, y: e.clientY }));
  }, [schemas, addOp, flow]);

  const onDoubleClick = useCallback((e: React.MouseEvent) => {
    if (!(e.target as HTMLElement).classList.contains("react-flow__pane")) return;
    const box = root.current!.getBoundingClientRect();
    setAdder({ ...flow.screenToFlowPosition({ x: e.clientX, y: e.clientY }), screen: { x: e.clientX - box.left, y: e.clientY - box.top } });
  }, [flow]);

  const shownEdges = useMemo(() => (selectedEdges.size ? edges.map((e) => (selectedEdges.has(e.id) ? { ...e, selected: true } : e)) : edges),
    [edges, selectedEdges]);

  const single = selected.size === 1 ? doc.nodes[[...selected][0]] ?? null : null;
  const notice = sync.notice;
  const ctx = useMemo(() => ({
    toggleBlock,
    portRefusal: (id: string, port: number) => refusals[id]?.[String(port)] ?? null,
  }), [toggleBlock, refusals]);

  return (
    <SyncContext.Provider value={sync}>
    <EditorContext.Provider value={ctx}>
      <div ref={root} className={"gb-root" + (dark ? " gb-dark" : "")} style={{ height }} tabIndex={0} onKeyDown={onKeyDown}
        data-lm-suppress-shortcuts="true" data-gb-ready={ready && fittedView ? "1" : "0"} data-gb-version={doc.version}
        data-gb-pending={sync.pending.length} data-gb-nodes={nodes.length} data-gb-session={sync.session}>
        <Header doc={doc} sync={sync} dir={dir} onDir={(d) => { setDir(d); runLayout(d); }} onLayout={() => runLayout()}
          onFit={() => flow.fitView({ padding: 0.1 })} onGroup={group} onUngroup={() => ungroup()} onDelete={removeSelected}
          onExport={exportImage} onPython={exportPython} actions={props.actions} selected={selected} hasSelection={selected.size > 0} />
        <div className="gb-body">
          <Palette ops={ops} onAdd={addFromPalette} />
          <div className="gb-canvas" onDragOver={(e) => { e.preventDefault(); e.dataTransfer.dropEffect = "move"; }} onDrop={onDrop} onDoubleClick={onDoubleClick}>
            <ReactFlow nodes={nodes} edges={shownEdges} nodeTypes={nodeTypes} edgeTypes={edgeTypes} onNodesChange={onNodesChange} onNodeDragStop={onNodeDragStop}
              onConnect={onConnect} onConnectStart={onConnectStart} onConnectEnd={onConnectEnd} isValidConnection={isValidConnection}
              onEdgesDelete={onEdgesDelete} deleteKeyCode={null} zoomOnDoubleClick={false} minZoom={0.05} maxZoom={3}
              colorMode={dark ? "dark" : "light"} proOptions={{ hideAttribution: true }} onlyRenderVisibleElements={nodes.length > 300}
              onEdgesChange={onEdgesChange} elementsSelectable>
              <Background gap={16} size={1} />
              {nodes.length <= 400 && <MiniMap pannable zoomable className="gb-minimap" />}
              <Controls showInteractive={false} />
            </ReactFlow>
            {reason && <div className="gb-reason" role="status">{reason}</div>}
            {notice && (
              <div className={`gb-notice gb-notice-${notice.kind}`} role={notice.kind === "error" ? "alert" : "status"} onClick={() => sync.setNotice(null)}>
                {notice.text}
              </div>
            )}
            {adder && <AddByName ops={ops} at={adder.screen} onPick={(op) => { addOp(op, adder); setAdder(null); }} onClose={() => setAdder(null)} />}
            {python !== null && <PythonDialog source={python} name={doc.graph.name} onClose={() => setPython(null)} />}
          </div>
          <Inspector node={single} count={selected.size} schema={single ? schemas[single.op] : undefined}
            onParams={(params) => single && patch([{ op: "params", node: single.id, params }])}
            onRename={(name) => single && sync.patch([{ op: "rename", node: single.id, name }]).then((r) => {
              const nu = r.ids[single.id]; if (nu) setSelected(new Set([nu]));
            })}
            onToggleBlock={() => single && toggleBlock(single.id)} onUngroup={() => single && ungroup(single.id)} />
        </div>
      </div>
    </EditorContext.Provider>
    </SyncContext.Provider>
  );
}

type HeaderProps = {
  doc: Doc; sync: Sync; dir: Direction; onDir: (d: Direction) => void; onLayout: () => void; onFit: () => void;
  onGroup: () => void; onUngroup: () => void; onDelete: () => void; onExport: (k: "svg" | "png") => void; onPython: () => void;
  actions: { name: string; doc: string }[]; selected: Set<string>; hasSelection: boolean;
};

function Header(p: HeaderProps) {
  const t = p.doc.totals;
  return (
    <div className="gb-header">
      <span className="gb-title">{p.doc.graph.name}</span>
      <span className="gb-totals" data-params={t.params} data-flops={t.flops ?? ""}>
        {t.nodes} nodes · {compact(t.params)} params · {compact(t.flops)} FLOPs
        {t.errors > 0 && <span className="gb-errcount"> · {t.errors} error{t.errors > 1 ? "s" : ""}</span>}
      </span>
      <span className="gb-spacer" />
      <button title="undo (Ctrl+Z)" disabled={!p.sync.canUndo} onClick={() => p.sync.request("undo")} data-action="undo">↶</button>
      <button title="redo (Ctrl+Shift+Z)" disabled={!p.sync.canRedo} onClick={() => p.sync.request("redo")} data-action="redo">↷</button>
      <button title="group selection into a block (Ctrl+G)" disabled={!p.hasSelection} onClick={p.onGroup} data-action="group">Group</button>
      <button title="ungroup the selected block (Ctrl+Shift+G)" disabled={!p.hasSelection} onClick={p.onUngroup} data-action="ungroup">Ungroup</button>
      <button title="delete selection (Delete)" disabled={!p.hasSelection} onClick={p.onDelete} data-action="delete">Delete</button>
      <select value={p.dir} onChange={(e) => p.onDir(e.target.value as Direction)} title="layout direction">
        <option value="LR">left → right</option>
        <option value="TB">top ↓ down</option>
      </select>
      <button title="automatic layout (elkjs, layered)" onClick={p.onLayout} data-action="layout">Layout</button>
      <button title="fit the graph in view" onClick={p.onFit} data-action="fit">Fit</button>
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
            if (m && m.errors?.length) p.sync.setNotice({ text: m.errors[0].message, kind: "error", nodes: [] });
          });
        }} data-action="actions">
          <option value="">Actions…</option>
          {p.actions.map((a) => <option key={a.name} value={a.name} title={a.doc}>{a.name}</option>)}
        </select>
      )}
    </div>
  );
}

function AddByName({ ops, at, onPick, onClose }: { ops: OpSchema[]; at: XY; onPick: (op: string) => void; onClose: () => void }) {
  const [text, setText] = useState("");
  const matches = ops.filter((o) => o.name.includes(text.trim().toLowerCase())).slice(0, 8);
  return (
    <div className="gb-adder" style={{ left: at.x, top: at.y }}>
      <input autoFocus placeholder="op name" value={text} aria-label="add op by name" onChange={(e) => setText(e.target.value)}
        onKeyDown={(e) => {
          if (e.key === "Enter" && matches.length) onPick((matches.find((m) => m.name === text.trim()) ?? matches[0]).name);
          if (e.key === "Escape") onClose();
          e.stopPropagation();
        }} onBlur={() => setTimeout(onClose, 150)} />
      {matches.map((m) => <div key={m.name} className="gb-adder-item" title={m.doc} onMouseDown={() => onPick(m.name)}>{m.name}</div>)}
    </div>
  );
}

function PythonDialog({ source, name, onClose }: { source: string; name: string; onClose: () => void }) {
  return (
    <div className="gb-dialog" role="dialog">
      <div className="gb-row">
        <strong>{name}.py</strong>
        <span className="gb-spacer" />
        <button onClick={() => download(URL.createObjectURL(new Blob([source], { type: "text/x-python" })), `${name}.py`)}>Download</button>
        <button onClick={() => navigator.clipboard?.writeText(source)}>Copy</button>
        <button onClick={onClose}>Close</button>
      </div>
      <pre className="gb-python">{source}</pre>
    </div>
  );
}
