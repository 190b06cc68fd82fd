/**
 * Side panels: the palette (generated from the op registry) and the inspector (name + parameter form
 * generated from the op's typed schema; bad values shown inline and never sent).
 */
import { MiniMap } from "@xyflow/react";
import { memo, useEffect, useMemo, useState } from "react";
import { categoryColour } from "../categories";
import { compact, formatSpec } from "../doc";
import type { ErrorRole } from "../errors";
import { controlFor, describe, formatValue, paletteGroups, parseValue } from "../forms";
import type { NodeDoc, OpSchema, ParamSchema } from "../types";

export const DRAG_TYPE = "application/x-graphbuilder-op";

export type PaletteProps = { ops: OpSchema[]; onAdd: (op: string) => void; advanced: boolean; onAdvanced: (on: boolean) => void };

/** The op palette: categories in a fixed order with their colours, search (best matches first), and the
 * "advanced" toggle for search-space parts and ops' internal stages. */
export const Palette = memo(function Palette({ ops, onAdd, advanced, onAdvanced }: PaletteProps) {
  const [query, setQuery] = useState("");
  const groups = useMemo(() => paletteGroups(ops, query, advanced), [ops, query, advanced]);
  const hidden = useMemo(() => ops.filter((o) => o.advanced).length, [ops]);
  return (
    <div className="gb-palette">
      <input className="gb-search" placeholder="search ops" value={query} onChange={(e) => setQuery(e.target.value)} aria-label="search ops" />
      <div className="gb-palette-list">
        {groups.map(([category, items]) => (
          <details key={category} open={!!query || OPEN_GROUPS.has(category)} style={{ "--gb-cat": categoryColour(category) } as React.CSSProperties}>
            <summary>{category} <span className="gb-count">{items.length}</span></summary>
            {items.map((op) => (
              <div key={op.name} className="gb-palette-item" draggable title={op.doc} data-op={op.name}
                onDragStart={(e) => { e.dataTransfer.setData(DRAG_TYPE, op.name); e.dataTransfer.setData("text/plain", op.name); e.dataTransfer.effectAllowed = "move"; }}
                onDoubleClick={() => onAdd(op.name)}>
                {op.name}
              </div>
            ))}
          </details>
        ))}
      </div>
      {hidden > 0 && (
        <label className="gb-advanced" title="search-space parts and ops' internal stages (GloRe's, mixed_op candidates...)">
          <input type="checkbox" checked={advanced} onChange={(e) => onAdvanced(e.target.checked)} data-action="advanced" />
          advanced ({hidden})
        </label>
      )}
    </div>
  );
});

const OPEN_GROUPS = new Set(["structure", "convolution", "linear", "activation", "normalization"]);

function Field({ p, value, onCommit }: { p: ParamSchema; value: unknown; onCommit: (v: unknown) => void }) {
  const control = controlFor(p);
  const [text, setText] = useState(formatValue(p, value));
  const [error, setError] = useState<string | null>(null);
  useEffect(() => { setText(formatValue(p, value)); setError(null); }, [value, p]);
  const commit = (raw: string | boolean) => {
    const r = parseValue(p, raw);
    if (!r.ok) { setError(r.error); return; }
    setError(null);
    if (JSON.stringify(r.value) !== JSON.stringify(value)) onCommit(r.value);
  };
  let input;
  if (control === "checkbox") {
    input = <input type="checkbox" checked={value === true} onChange={(e) => commit(e.target.checked)} />;
  } else if (control === "select") {
    input = (
      <select value={formatValue(p, value)} onChange={(e) => commit(e.target.value)}>
        {p.choices.map((c) => <option key={String(c)} value={String(c)}>{String(c)}</option>)}
      </select>
    );
  } else {
    input = (
      <input type={control === "number" ? "number" : "text"} value={text} step={p.kind === "int" ? 1 : "any"}
        min={p.min ?? undefined} max={p.max !== null && p.max < 2 ** 31 - 1 ? p.max : undefined}
        placeholder={p.optional ? "none" : ""}
        onChange={(e) => { setText(e.target.value); const r = parseValue(p, e.target.value); setError(r.ok ? null : r.error); }}
        onBlur={() => commit(text)}
        onKeyDown={(e) => { if (e.key === "Enter") commit(text); }} />
    );
  }
  return (
    <label className={"gb-field" + (error ? " gb-field-bad" : "")} data-param={p.name} title={p.doc}>
      <span className="gb-field-name">{p.name}</span>
      {input}
      <span className="gb-field-hint">{error ?? describe(p)}</span>
    </label>
  );
}

export type InspectorProps = {
  node: NodeDoc | null;
  count: number;
  schema: OpSchema | undefined;
  role: ErrorRole | undefined;
  nameOf: (id: string) => string;
  onParams: (params: Record<string, unknown>) => void;
  onRename: (name: string) => void;
  onToggleBlock: () => void;
  onUngroup: () => void;
};

export function Inspector({ node, count, schema, role, nameOf, onParams, onRename, onToggleBlock, onUngroup }: InspectorProps) {
  const [name, setName] = useState(node?.name ?? "");
  useEffect(() => setName(node?.name ?? ""), [node?.name, node?.id]);
  if (!node) {
    return <div className="gb-inspector gb-muted">{count > 1 ? `${count} nodes selected: Ctrl+G groups them into a block` : "Select a node to edit it. Drag ops from the palette; double-click the canvas to add one by name."}</div>;
  }
  return (
    <div className="gb-inspector" data-node={node.id}>
      <label className="gb-field">
        <span className="gb-field-name">name</span>
        <input className="gb-rename" value={name} onChange={(e) => setName(e.target.value)}
          onKeyDown={(e) => { if (e.key === "Enter" && name && name !== node.name) onRename(name); }}
          onBlur={() => { if (name && name !== node.name) onRename(name); }} />
      </label>
      <div className="gb-op-title" title={schema?.doc}>{node.isBlock ? "block" : node.op}</div>
      {schema && <div className="gb-doc">{schema.doc}</div>}
      {node.isBlock && (
        <div className="gb-row">
          <button onClick={onToggleBlock} data-action="toggle-block">{node.meta?.expanded ? "Collapse" : "Expand"}</button>
          <button onClick={onUngroup}>Ungroup</button>
        </div>
      )}
      {schema?.params.map((p) => <Field key={p.name} p={p} value={node.params[p.name]} onCommit={(v) => onParams({ [p.name]: v })} />)}
      <div className="gb-outputs">
        {node.outputs.map((o, i) => <div key={i}>out {i}: {formatSpec(o)}</div>)}
        <div>{compact(node.numParams)} params · {compact(node.flops)} FLOPs</div>
      </div>
      {node.error && (role?.kind === "waiting"
        ? <div className="gb-wait-text">waiting on {nameOf(role.root)}: its error stops this node; fix that first</div>
        : <div className="gb-error-text" role="alert">{node.error}</div>)}
    </div>
  );
}

const MINIMAP_W = 230; // px: the side column (240) less its padding; React Flow needs a number here

/** The minimap, in the side column: it never covers the canvas. Click or drag in it to move the view. */
export function SideMinimap() {
  return (
    <div className="gb-minimap-panel">
      <MiniMap pannable zoomable className="gb-minimap" style={{ position: "static", margin: 0, width: MINIMAP_W, height: 130 }}
        nodeStrokeWidth={2} ariaLabel="minimap" />
    </div>
  );
}
