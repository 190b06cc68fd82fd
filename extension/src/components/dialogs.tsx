/**
 * Small overlays: the add-by-name box (double-click on the canvas) and the Python source dialog.
 */
import { useState } from "react";
import type { XY } from "../geometry";
import { rankOps } from "../search";
import type { OpSchema } from "../types";

export function download(url: string, filename: string) {
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  a.click();
}

/** Type an op's name, Enter adds the best match (exact, then prefix, then anywhere). */
export function AddByName({ ops, at, advanced, onPick, onClose }: {
  ops: OpSchema[]; at: XY; advanced: boolean; onPick: (op: string) => void; onClose: () => void;
}) {
  const [text, setText] = useState("");
  const matches = rankOps(ops, text, advanced).slice(0, 8);
  return (
    <div className="gb-adder" style={{ left: at.x, top: at.y }}>
      <input autoFocus placeholder="op name" value={text} aria-label="add op by name" onChange={(e) => setText(e.target.value)}
        onKeyDown={(e) => {
          if (e.key === "Enter" && matches.length) onPick(matches[0].name);
          if (e.key === "Escape") onClose();
          e.stopPropagation();
        }} onBlur={() => setTimeout(onClose, 150)} />
      {matches.map((m) => <div key={m.name} className="gb-adder-item" title={m.doc} onMouseDown={() => onPick(m.name)}>{m.name}</div>)}
    </div>
  );
}

export function PythonDialog({ source, name, onClose }: { source: string; name: string; onClose: () => void }) {
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
