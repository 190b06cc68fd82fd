/**
 * The editor: toolbar, palette, React Flow canvas, inspector and minimap. It reads the document from the Sync
 * module and wires the hooks together: positions (useLayout), selection, connection probe, clipboard, fix-its,
 * viewport and view state, shortcuts (one keymap table). Geometry, layout, forms and conversions are pure
 * modules; this component only turns gestures into patches and requests.
 */
import {
  Background, Controls, ReactFlow, useReactFlow, getNodesBounds, getViewportForBounds,
  type Edge, type Node, type NodeChange,
} from "@xyflow/react";
import { toPng, toSvg } from "html-to-image";
import { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState, useSyncExternalStore } from "react";
import { categoryColour } from "../categories";
import { freeName, joinId } from "../doc";
import { errorRoles, rootErrors, sameRole, type ErrorRole } from "../errors";
import { newCache, toFlow, visibleNodes, type FlowEdge, type FlowNode } from "../flow";
import { initialParams } from "../forms";
import { positionOf, type XY } from "../geometry";
import { useClipboard } from "../hooks/useClipboard";
import { handleIndex, useConnectionProbe } from "../hooks/useConnectionProbe";
import { useFixits } from "../hooks/useFixits";
import { useLayout } from "../hooks/useLayout";
import { useSelection } from "../hooks/useSelection";
import { useShortcuts } from "../hooks/useShortcuts";
import { useViewport } from "../hooks/useViewport";
import { useViewState } from "../hooks/useViewState";
import { KeyedStore } from "../keyed";
import type { Action } from "../keymap";
import { workerElk, type Direction } from "../layout";
import { failure } from "../protocol";
import type { Sync } from "../sync";
import type { Doc, EdgeStyle, HighlightStyle, OpSchema, PatchOp, ViewState } from "../types";
import { AddByName, download, PythonDialog } from "./dialogs";
import { Header } from "./Header";
import { EditorContext, edgeTypes, nodeTypes, SyncContext } from "./nodes";
import { NoticeBar } from "./Notice";
import { DRAG_TYPE, Inspector, Palette, SideMinimap } from "./panels";

export type EditorProps = {
  sync: Sync;
  ops: OpSchema[];
  highlights: Record<string, HighlightStyle>;
  edgeStyles: EdgeStyle[];
  actions: { name: string; doc: string }[];
  direction: Direction;
  onDirection: (d: Direction) => void;
  height: number;
  dark: boolean;
  view: ViewState;
  onView: (v: ViewState) => void;
};

const MINIMAP_MAX_NODES = 400; // drawing every node twice costs more than the minimap helps beyond this

function useDoc(sync: Sync): Doc {
  return useSyncExternalStore((fn) => sync.subscribe(fn), () => sync.view);
}

export function Editor(props: EditorProps) {
  const { sync, ops, highlights, edgeStyles, height, dark, direction: dir } = props;
  const doc = useDoc(sync);
  const docRef = useRef(doc);
  docRef.current = doc;
  const flow = useReactFlow<FlowNode, FlowEdge>();
  const schemas = useMemo(() => Object.fromEntries(ops.map((o) => [o.name, o])), [ops]);
  const rootEl = useRef<HTMLDivElement>(null);
  const canvasEl = useRef<HTMLDivElement>(null);
  const cache = useRef(newCache());
  const [dragging, setDragging] = useState<Record<string, XY>>({});
  const [adder, setAdder] = useState<{ x: number; y: number; screen: XY } | null>(null);
  const [python, setPython] = useState<string | null>(null);
  const [jump, setJump] = useState<string | null>(null);
  const [wantDefault, setWantDefault] = useState(false);

  const ui = useViewState(props.view, props.onView, doc);
  // ELK's worker script comes from Python on first use (it is not in the bundle).
  const elk = useMemo(() => workerElk(() => sync.request("elk_source")
    .then((m) => (m.kind === "elk_source" && m.ok ? m.source : null))), [sync]);
  const lay = useLayout(sync, doc, ui.root, dir, elk, schemas);
  const sel = useSelection(doc);

  const roles = useMemo(() => errorRoles(doc), [doc]);
  const roleStore = useMemo(() => new KeyedStore<ErrorRole>(), []);
  useLayoutEffect(() => roleStore.replace(new Map(roles), sameRole), [roles, roleStore]);
  const roots = useMemo(() => rootErrors(roles), [roles]);

  const vertical = dir === "TB";
  const { nodes, edges } = useMemo(
    () => toFlow({ doc, root: ui.root, auto: lay.auto, dragging, selected: sel.selected, highlights, edgeStyles, vertical }, cache.current),
    [doc, ui.root, lay.auto, dragging, sel.selected, highlights, edgeStyles, vertical],
  );
  const vp = useViewport(flow, canvasEl, lay.ready, nodes, doc, dir, ui.saved.current, ui.saveViewport);
  const patch = useCallback((o: PatchOp[]) => sync.patch(o), [sync]);
  const probe = useConnectionProbe(sync, flow, canvasEl, patch);
  const clip = useClipboard(sync, sel.selected, sel.select);

  useEffect(() => { // handles for benchmarks and debugging in the browser console
    if (rootEl.current) Object.assign(rootEl.current, { __gbSync: sync, __gbFlow: flow });
  }, [sync, flow]);

  // -- navigation ----------------------------------------------------------------------------------------------
  const goTo = useCallback((id: string) => {
    const n = sync.view.nodes[id];
    if (!n) return;
    sel.select([id]);
    if (nodes.some((f) => f.id === id) && vp.centreOn(id)) return;
    if (n.parent !== ui.root && !nodes.some((f) => f.id === id)) ui.setRoot(n.parent);
    setJump(id);
  }, [sync, sel, nodes, vp, ui]);

  const placed = lay.ready && !visibleNodes(doc, ui.root).some((n) => !positionOf(n, lay.auto));
  useEffect(() => { // a jump waits until its node is drawn where it will stay (after opening its block)
    if (!jump || !placed || !nodes.some((n) => n.id === jump)) return;
    const frame = requestAnimationFrame(() => { if (vp.centreOn(jump)) setJump(null); });
    return () => cancelAnimationFrame(frame);
  }, [jump, placed, nodes, vp]);

  const openView = useCallback((id: string | null) => {
    ui.setRoot(id);
    sel.clear();
    setWantDefault(true);
  }, [ui, sel]);

  useEffect(() => { // the default view of a newly opened block (or after Layout), once everything has a place
    if (!wantDefault || jump || !placed) return;
    const frame = requestAnimationFrame(() => { if (vp.showDefault()) setWantDefault(false); });
    return () => cancelAnimationFrame(frame);
  }, [wantDefault, jump, placed, vp]);

  const [layouts, setLayouts] = useState(0); // Layouts done (data-gb-layouts: tests wait on it)
  const relayout = useCallback(async (d: Direction = dir) => {
    await lay.runLayout(d);
    setWantDefault(true);
    setLayouts((k) => k + 1);
  }, [lay, dir]);

  const laidDirection = useRef(dir); // the direction the nodes are laid out in
  const changeDirection = useCallback((d: Direction) => {
    laidDirection.current = d;
    props.onDirection(d); // the widget's `direction` trait: reloads keep it
    relayout(d);
  }, [props, relayout]);
  useEffect(() => { // `widget.direction = ...` set in Python lays the graph out again too
    if (dir === laidDirection.current || !lay.ready) return;
    laidDirection.current = dir;
    relayout(dir);
  }, [dir, lay.ready, relayout]);

  // -- gestures -> patches -------------------------------------------------------------------------------------
  const addOp = useCallback((opName: string, at?: XY) => {
    const schema = schemas[opName];
    if (!schema) return;
    const parent = ui.root;
    const name = freeName(sync.view, opName, parent);
    const position: [number, number] = at ? [at.x, at.y] : [40, 40];
    patch([{ op: "add", opName, name, params: initialParams(schema), position, parent }]);
    sel.select([joinId(parent, name)]);
  }, [schemas, sync, patch, sel, ui.root]);

  const addFromPalette = useCallback((op: string) => {
    const box = canvasEl.current?.getBoundingClientRect();
    addOp(op, flow.screenToFlowPosition({ x: (box?.left ?? 0) + (box?.width ?? 400) / 2, y: (box?.top ?? 0) + 60 }));
  }, [addOp, flow]);

  const onNodesChange = useCallback((changes: NodeChange<FlowNode>[]) => {
    sel.onSelectChanges(changes as NodeChange[]);
    const drag: Record<string, XY> = {};
    for (const c of changes) if (c.type === "position" && c.position) drag[c.id] = c.position;
    if (Object.keys(drag).length) setDragging((d) => ({ ...d, ...drag }));
  }, [sel]);

  const onNodeDragStop = useCallback((_: unknown, __: unknown, moved: Node[]) => {
    const positions: Record<string, [number, number]> = {};
    for (const n of moved) positions[n.id] = [Math.round(n.position.x), Math.round(n.position.y)];
    setDragging({});
    if (Object.keys(positions).length) patch([{ op: "move", positions }]);
  }, [patch]);

  const onEdgesDelete = useCallback((gone: Edge[]) => {
    patch(gone.map((e) => ({ op: "disconnect", target: [e.target, handleIndex(e.targetHandle)] }) as PatchOp));
  }, [patch]);

  const removeSelected = useCallback(() => {
    const ids = [...sel.selected].filter((id) => sync.view.nodes[id]);
    const cut = edges.filter((e) => sel.selectedEdges.has(e.id) && !ids.includes(e.target));
    const ops: PatchOp[] = cut.map((e) => ({ op: "disconnect", target: [e.target, handleIndex(e.targetHandle)] }) as PatchOp);
    if (ids.length) ops.push({ op: "remove", nodes: ids });
    if (ops.length) patch(ops);
    sel.clear();
  }, [sel, edges, sync, patch]);

  const group = useCallback(() => {
    const ids = [...sel.selected];
    if (ids.length) sync.patch([{ op: "group", nodes: ids }]).then((r) => sel.select(r.created.slice(0, 1)));
  }, [sel, sync]);

  const ungroup = useCallback((id?: string) => {
    const target = id ?? [...sel.selected].find((s) => sync.view.nodes[s]?.isBlock);
    if (target) sync.patch([{ op: "ungroup", node: target }]).then((r) => sel.select(r.created));
  }, [sel, sync]);

  const exportImage = useCallback(async (kind: "svg" | "png") => {
    const el = rootEl.current?.querySelector(".react-flow__viewport") as HTMLElement | null;
    if (!el) return;
    const bounds = getNodesBounds(flow.getNodes());
    const w = Math.min(4096, Math.max(200, bounds.width + 80));
    const h = Math.min(4096, Math.max(200, bounds.height + 80));
    const v = getViewportForBounds(bounds, w, h, 0.05, 2, 0.05);
    const opts = { backgroundColor: dark ? "#1b1d21" : "#fff", width: w, height: h,
      style: { width: `${w}px`, height: `${h}px`, transform: `translate(${v.x}px, ${v.y}px) scale(${v.zoom})` } };
    const url = kind === "svg" ? await toSvg(el, opts) : await toPng(el, opts);
    if (rootEl.current) rootEl.current.dataset.gbExport = url.slice(0, 32);
    download(url, `${sync.view.graph.name}.${kind}`);
  }, [flow, dark, sync]);

  const exportPython = useCallback(async () => {
    const msg = await sync.request("export_python");
    if (msg.kind !== "exported" || !msg.ok) return sync.setNotice({ text: failure(msg) ?? "export failed", kind: "error", nodes: [] });
    setPython(msg.source);
  }, [sync]);

  const shortcuts = useMemo((): Partial<Record<Action, () => void>> => ({
    undo: () => sync.request("undo"),
    redo: () => sync.request("redo"),
    copy: clip.copy,
    paste: clip.paste,
    group,
    ungroup: () => ungroup(),
    selectAll: () => sel.select(nodes.map((n) => n.id)),
    delete: removeSelected,
    escape: () => { setAdder(null); sel.clear(); },
    fitSelection: () => vp.fitNodes([...sel.selected]),
    fitAll: vp.fitAll,
    find: () => rootEl.current?.querySelector<HTMLInputElement>(".gb-find-input")?.focus(),
    layout: () => relayout(),
    openBlock: () => {
      const only = sel.selected.size === 1 ? sync.view.nodes[[...sel.selected][0]] : undefined;
      if (only?.isBlock) openView(only.id);
    },
    closeBlock: () => { if (ui.root !== null) openView(sync.view.nodes[ui.root]?.parent ?? null); },
  }), [sync, clip, group, ungroup, sel, nodes, removeSelected, vp, relayout, openView, ui.root]);
  const onKeyDown = useShortcuts(shortcuts);

  const onDrop = useCallback((e: React.DragEvent) => {
    const op = e.dataTransfer.getData(DRAG_TYPE) || e.dataTransfer.getData("text/plain");
    if (!op || !schemas[op]) return;
    e.preventDefault();
    addOp(op, flow.screenToFlowPosition({ x: e.clientX, y: e.clientY }));
  }, [schemas, addOp, flow]);

  const onDoubleClick = useCallback((e: React.MouseEvent) => {
    if (!(e.target as HTMLElement).classList.contains("react-flow__pane")) return;
    const box = canvasEl.current!.getBoundingClientRect();
    setAdder({ ...flow.screenToFlowPosition({ x: e.clientX, y: e.clientY }), screen: { x: e.clientX - box.left, y: e.clientY - box.top } });
  }, [flow]);

  const onNodeDoubleClick = useCallback((_: unknown, node: Node) => {
    if (sync.view.nodes[node.id]?.isBlock) openView(node.id);
  }, [sync, openView]);

  const shownEdges = useMemo(() => (sel.selectedEdges.size
    ? edges.map((e) => (sel.selectedEdges.has(e.id) ? { ...e, selected: true } : e)) : edges), [edges, sel.selectedEdges]);

  const single = sel.selected.size === 1 ? doc.nodes[[...sel.selected][0]] ?? null : null;
  const singleRole = single ? roles.get(single.id) : undefined;
  const fix = useFixits(sync, single?.error && singleRole?.kind !== "waiting" ? single.id : null, single?.error ?? null);

  const nameOf = useCallback((id: string) => {
    const n = docRef.current.nodes[id];
    return !n ? id : n.parent === null ? n.name : id;
  }, []);
  const colourOf = useCallback((op: string) => categoryColour(schemas[op]?.category), [schemas]);
  const ctx = useMemo(() => ({ toggleBlock: lay.toggleBlock, openBlock: openView, refusals: probe.store, roles: roleStore, colourOf, nameOf }),
    [lay.toggleBlock, openView, probe.store, roleStore, colourOf, nameOf]);

  const side = ui.panels.inspector || (ui.panels.minimap && nodes.length <= MINIMAP_MAX_NODES);
  return (
    <SyncContext.Provider value={sync}>
    <EditorContext.Provider value={ctx}>
      <div ref={rootEl} className={"gb-root" + (dark ? " gb-dark" : "")} style={{ height }} tabIndex={0} onKeyDown={onKeyDown}
        data-lm-suppress-shortcuts="true" data-gb-ready={lay.ready && vp.shown ? "1" : "0"} data-gb-version={doc.version}
        data-gb-pending={sync.pending.length} data-gb-nodes={nodes.length} data-gb-session={sync.session}
        data-gb-view={ui.root ?? ""} data-gb-direction={dir} data-gb-layouts={layouts}>
        <Header doc={doc} sync={sync} root={ui.root} dir={dir} rootErrors={roots} panels={ui.panels} selected={sel.selected}
          actions={props.actions} onRoot={openView} onDir={changeDirection} onLayout={() => relayout()} onFit={vp.fitAll}
          onFitSelection={() => vp.fitNodes([...sel.selected])} onExpand={lay.expandTo} onGroup={group} onUngroup={() => ungroup()}
          onDelete={removeSelected} onExport={exportImage} onPython={exportPython} onGo={goTo} onPanel={ui.togglePanel} />
        <div className="gb-body">
          {ui.panels.palette && <Palette ops={ops} onAdd={addFromPalette} advanced={ui.advanced} onAdvanced={ui.setAdvanced} />}
          <div ref={canvasEl} className="gb-canvas" onDragOver={(e) => { e.preventDefault(); e.dataTransfer.dropEffect = "move"; }}
            onDrop={onDrop} onDoubleClick={onDoubleClick}>
            <ReactFlow nodes={nodes} edges={shownEdges} nodeTypes={nodeTypes} edgeTypes={edgeTypes} onNodesChange={onNodesChange}
              onNodeDragStop={onNodeDragStop} onNodeDoubleClick={onNodeDoubleClick}
              onConnect={probe.onConnect} onConnectStart={probe.onConnectStart} onConnectEnd={probe.onConnectEnd}
              isValidConnection={probe.isValidConnection} onEdgesDelete={onEdgesDelete} onEdgesChange={sel.onEdgesChange}
              onMoveEnd={vp.onMoveEnd} deleteKeyCode={null} zoomOnDoubleClick={false} minZoom={0.05} maxZoom={3}
              panOnScroll colorMode={dark ? "dark" : "light"} proOptions={{ hideAttribution: true }}
              onlyRenderVisibleElements={nodes.length > 300} elementsSelectable>
              <Background gap={16} size={1} />
              <Controls showInteractive={false} />
            </ReactFlow>
            {probe.reason && <div className="gb-reason" role="status">{probe.reason}</div>}
            <NoticeBar node={single} role={singleRole} fixits={fix.fixits} notice={sync.notice} nameOf={nameOf}
              onFix={fix.apply} onGo={goTo} onDismiss={() => sync.setNotice(null)} />
            {adder && <AddByName ops={ops} at={adder.screen} advanced={ui.advanced}
              onPick={(op) => { addOp(op, adder); setAdder(null); }} onClose={() => setAdder(null)} />}
            {python !== null && <PythonDialog source={python} name={doc.graph.name} onClose={() => setPython(null)} />}
          </div>
          {side && (
            <div className="gb-side">
              {ui.panels.inspector && (
                <Inspector node={single} count={sel.selected.size} schema={single ? schemas[single.op] : undefined}
                  role={singleRole} nameOf={nameOf}
                  onParams={(params) => single && patch([{ op: "params", node: single.id, params }])}
                  onRename={(name) => single && sync.patch([{ op: "rename", node: single.id, name }]).then((r) => {
                    const nu = r.ids[single.id]; if (nu) sel.select([nu]);
                  })}
                  onToggleBlock={() => single && lay.toggleBlock(single.id)} onUngroup={() => single && ungroup(single.id)} />
              )}
              {ui.panels.minimap && nodes.length <= MINIMAP_MAX_NODES && <SideMinimap />}
            </div>
          )}
        </div>
      </div>
    </EditorContext.Provider>
    </SyncContext.Provider>
  );
}
