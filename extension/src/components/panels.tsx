/**
 * Side panels: the palette (generated from the op registry) and the inspector (name + parameter form
 * generated from the op's typed schema; bad values shown inline and never sent).
 */
import { memo, useEffect, useMemo, useState } from "react";
import { compact, formatSpec } from "../doc";
import { controlFor, describe, formatValue, paletteGroups, parseValue } from "../forms";
import type { NodeDoc, OpSchema, ParamSchema } from "../types";

export const DRAG_TYPE = "application/x-graphbuilder-op";

export const Palette = memo(function Palette({ ops, onAdd }: { ops: OpSchema[]; onAdd: (op: string) => void }) {
  const [query, setQuery] = useState("");
  const groups = useMemo(() => paletteGroups(ops.filter((o) => o.name !== "output" || true), query), [ops, query]);
  return (
    <div className="gb-palette">
      <input className="gb-search" placeholder="search ops" value={query} onChange={(e) => setQuery(e.target.value)} aria-label="search ops" />
      <div className="gb-palette-list">
        {groups.map(([category, items]) => (
          <details key={category} open={!!query || category === "convolution" || category === "structure" || category === "activation"}>
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
    </div>
  );
});

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
  onParams: (params: Record<string, unknown>) => void;
  onRename: (name: string) => void;
  onToggleBlock: () => void;
  onUngroup: () => void;
};

export function Inspector({ node, count, schema, onParams, onRename, onToggleBlock, onUngroup }: InspectorProps) {
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
          <button onClick={onToggleBlock}>{node.meta?.expanded ? "Collapse" : "Expand"}</button>
          <button onClick={onUngroup}>Ungroup</button>
        </div>
      )}
      {schema?.params.map((p) => <Field key={p.name} p={p} value={node.params[p.name]} onCommit={(v) => onParams({ [p.name]: v })} />)}
      <div className="gb-outputs">
        {node.outputs.map((o, i) => <div key={i}>out {i}: {formatSpec(o)}</div>)}
        <div>{compact(node.numParams)} params · {compact(node.flops)} FLOPs</div>
      </div>
      {node.error && <div className="gb-error-text" role="alert">{node.error}</div>}
    </div>
  );
}
