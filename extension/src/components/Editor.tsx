/**
 * The editor: toolbar, palette, React Flow canvas, inspector and minimap. It reads the document from the Sync
 * module and wires the hooks together: positions (useLayout), selection, connection probe, clipboard, fix-its,
 * viewport and view state, shortcuts (one keymap table). Geometry, layout, forms and conversions are pure
 * modules; this component only turns gestures into patches and requests.
 */
import { Background, Controls, ReactFlow, useReactFlow, type Node } from "@xyflow/react";
import { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState, useSyncExternalStore } from "react";
import { categoryColour } from "../categories";
import { errorRoles, rootErrors, sameRole, type ErrorRole } from "../errors";
import { newCache, toFlow, visibleNodes, type FlowEdge, type FlowNode } from "../flow";
import { positionOf, type XY } from "../geometry";
import { useClipboard } from "../hooks/useClipboard";
import { useConnectionProbe } from "../hooks/useConnectionProbe";
import { useEdits } from "../hooks/useEdits";
import { useExports } from "../hooks/useExports";
import { useFixits } from "../hooks/useFixits";
import { useLayout } from "../hooks/useLayout";
import { useSelection } from "../hooks/useSelection";
import { useShortcuts } from "../hooks/useShortcuts";
import { useViewport } from "../hooks/useViewport";
import { useViewState } from "../hooks/useViewState";
import { KeyedStore } from "../keyed";
import type { Action } from "../keymap";
import { workerElk, type Direction } from "../layout";
import type { Sync } from "../sync";
import type { Doc, EdgeStyle, HighlightStyle, OpSchema, ViewState } from "../types";
import { AddByName, PythonDialog } from "./dialogs";
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
  const [adder, setAdder] = useState<{ x: number; y: number; screen: XY } | null>(null);
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
  const drawnEdges = useRef<FlowEdge[]>([]);
  const edit = useEdits(sync, flow, schemas, sel, ui.root, canvasEl, drawnEdges);
  const { nodes, edges } = useMemo(
    () => toFlow({ doc, root: ui.root, auto: lay.auto, dragging: edit.dragging, selected: sel.selected, highlights, edgeStyles, vertical },
      cache.current),
    [doc, ui.root, lay.auto, edit.dragging, sel.selected, highlights, edgeStyles, vertical],
  );
  drawnEdges.current = edges;
  const vp = useViewport(flow, canvasEl, lay.ready, nodes, doc, dir, ui.saved.current, ui.saveViewport);
  const probe = useConnectionProbe(sync, flow, canvasEl, edit.patch);
  const exports = useExports(sync, flow, rootEl, dark);
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
  const shortcuts = useMemo((): Partial<Record<Action, () => void>> => ({
    undo: () => sync.request("undo"),
    redo: () => sync.request("redo"),
    copy: clip.copy,
    paste: clip.paste,
    group: edit.group,
    ungroup: () => edit.ungroup(),
    selectAll: () => sel.select(nodes.map((n) => n.id)),
    delete: edit.removeSelected,
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
  }), [sync, clip, edit, sel, nodes, vp, relayout, openView, ui.root]);
  const onKeyDown = useShortcuts(shortcuts);

  const onDrop = useCallback((e: React.DragEvent) => {
    const op = e.dataTransfer.getData(DRAG_TYPE) || e.dataTransfer.getData("text/plain");
    if (!op || !schemas[op]) return;
    e.preventDefault();
    edit.addOp(op, flow.screenToFlowPosition({ x: e.clientX, y: e.clientY }));
  }, [schemas, edit, flow]);

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
          onFitSelection={() => vp.fitNodes([...sel.selected])} onExpand={lay.expandTo} onGroup={edit.group} onUngroup={() => edit.ungroup()}
          onDelete={edit.removeSelected} onExport={exports.exportImage} onPython={exports.exportPython} onGo={goTo} onPanel={ui.togglePanel} />
        <div className="gb-body">
          {ui.panels.palette && <Palette ops={ops} onAdd={edit.addFromPalette} advanced={ui.advanced} onAdvanced={ui.setAdvanced} />}
          <div ref={canvasEl} className="gb-canvas" onDragOver={(e) => { e.preventDefault(); e.dataTransfer.dropEffect = "move"; }}
            onDrop={onDrop} onDoubleClick={onDoubleClick}>
            <ReactFlow nodes={nodes} edges={shownEdges} nodeTypes={nodeTypes} edgeTypes={edgeTypes} onNodesChange={edit.onNodesChange}
              onNodeDragStop={edit.onNodeDragStop} onNodeDoubleClick={onNodeDoubleClick}
              onConnect={probe.onConnect} onConnectStart={probe.onConnectStart} onConnectEnd={probe.onConnectEnd}
              isValidConnection={probe.isValidConnection} onEdgesDelete={edit.onEdgesDelete} onEdgesChange={sel.onEdgesChange}
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
              onPick={(op) => { edit.addOp(op, adder); setAdder(null); }} onClose={() => setAdder(null)} />}
            {exports.python !== null && <PythonDialog source={exports.python} name={doc.graph.name} onClose={exports.closePython} />}
          </div>
          {side && (
            <div className="gb-side">
              {ui.panels.inspector && (
                <Inspector node={single} count={sel.selected.size} schema={single ? schemas[single.op] : undefined}
                  role={singleRole} nameOf={nameOf}
                  onParams={(params) => single && edit.patch([{ op: "params", node: single.id, params }])}
                  onRename={(name) => single && sync.patch([{ op: "rename", node: single.id, name }]).then((r) => {
                    const nu = r.ids[single.id]; if (nu) sel.select([nu]);
                  })}
                  onToggleBlock={() => single && lay.toggleBlock(single.id)} onUngroup={() => single && edit.ungroup(single.id)} />
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
