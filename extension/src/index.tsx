/**
 * anywidget entry point: renders the editor for a GraphWidget model. One ESM bundle (esbuild), React Flow's
 * stylesheet and ours inlined, nothing fetched from the network.
 */
import { createRender, useModel, useModelState } from "@anywidget/react";
import { ReactFlowProvider } from "@xyflow/react";
import flowCss from "@xyflow/react/dist/style.css";
import { useEffect, useMemo, useRef, useState } from "react";
import { Editor } from "./components/Editor";
import css from "./styles.css";
import { Sync, type Model as SyncModel } from "./sync";
import type { Direction } from "./layout";
import type { EdgeStyle, HighlightStyle, OpSchema, ViewState } from "./types";

function injectStyles() {
  if (document.getElementById("graphbuilder-widget-css")) return;
  const style = document.createElement("style");
  style.id = "graphbuilder-widget-css";
  style.textContent = `${flowCss}\n${css}`;
  document.head.appendChild(style);
}

/** JupyterLab sets data-jp-theme-light on <body>; follow it as it changes. */
function useDarkTheme(): boolean {
  const read = () => document.body.dataset.jpThemeLight === "false";
  const [dark, setDark] = useState(read);
  useEffect(() => {
    const obs = new MutationObserver(() => setDark(read()));
    obs.observe(document.body, { attributes: true, attributeFilter: ["data-jp-theme-light"] });
    return () => obs.disconnect();
  }, []);
  return dark;
}

function Widget() {
  const model = useModel();
  const [ops] = useModelState<OpSchema[]>("ops");
  const [highlights] = useModelState<Record<string, HighlightStyle>>("highlights");
  const [edgeStyles] = useModelState<EdgeStyle[]>("edge_styles");
  const [actions] = useModelState<{ name: string; doc: string }[]>("actions");
  const [direction, setDirection] = useModelState<Direction>("direction");
  const [height] = useModelState<number>("height");
  const [view, setView] = useModelState<ViewState>("view");
  const dark = useDarkTheme();
  const schemas = useMemo(() => Object.fromEntries((ops ?? []).map((o) => [o.name, o])), [ops]);
  const schemasRef = useRef(schemas);
  schemasRef.current = schemas;
  const sync = useMemo(() => new Sync(model as unknown as SyncModel, () => schemasRef.current), [model]);
  useEffect(() => () => sync.dispose(), [sync]);
  useEffect(injectStyles, []);
  return (
    <ReactFlowProvider>
      <Editor sync={sync} ops={ops ?? []} highlights={highlights ?? {}} edgeStyles={edgeStyles ?? []} actions={actions ?? []}
        direction={direction === "TB" ? "TB" : "LR"} onDirection={setDirection} height={height ?? 520} dark={dark}
        view={view ?? {}} onView={setView} />
    </ReactFlowProvider>
  );
}

export default { render: createRender(Widget) };
