/**
 * Types of the Python <-> browser protocol (docs/widget-protocol.md). Keys are camelCase here; Python
 * converts them once, at its edge (graphbuilder/widget/wire.py). Node ids are paths: a top-level node's
 * id is its name, a node inside block `b` is `b/inner` (`/` and `\` in names escaped with `\`).
 */

export type TensorSpec = { shape: number[]; dtype: string };

export type NodeDoc = {
  id: string;
  name: string;
  op: string;
  parent: string | null;
  params: Record<string, unknown>;
  inputs: ([string, number] | null)[];
  inputNames: string[];
  variadic: boolean;
  outputs: TensorSpec[];
  error: string | null;
  errorNodes: string[];
  numParams: number;
  flops: number | null;
  meta: Record<string, unknown>;
  isBlock: boolean;
  /** Set on nodes the browser created optimistically, until Python confirms them. */
  pending?: boolean;
};

export type Totals = { params: number; flops: number | null; errors: number; nodes: number };

export type Doc = {
  version: number;
  graph: { name: string; meta: Record<string, unknown> };
  totals: Totals;
  nodes: Record<string, NodeDoc>;
};

/** The document as it travels: nodes as a list. */
export type WireDoc = Omit<Doc, "nodes"> & { nodes: NodeDoc[]; canUndo?: boolean; canRedo?: boolean };

export type Change =
  | { op: "upsert"; node: NodeDoc }
  | { op: "fields"; id: string; fields: Partial<NodeDoc> }
  | { op: "delete"; id: string }
  | { op: "totals"; totals: Totals }
  | { op: "graph"; graph: Doc["graph"] };

export type PatchOp =
  | { op: "add"; opName: string; name?: string; params?: Record<string, unknown>; position?: [number, number]; parent?: string | null }
  | { op: "remove"; nodes: string[] }
  | { op: "connect"; source: [string, number]; target: [string, number] }
  | { op: "disconnect"; target: [string, number] }
  | { op: "params"; node: string; params: Record<string, unknown> }
  | { op: "rename"; node: string; name: string }
  | { op: "move"; positions: Record<string, [number, number]> }
  | { op: "meta"; node: string; meta: Record<string, unknown> }
  | { op: "group"; nodes: string[]; name?: string }
  | { op: "ungroup"; node: string }
  | { op: "paste"; fragment: unknown; offset?: [number, number]; parent?: string | null };

export type Patch = { kind: "patch"; id: string; baseVersion: number; ops: PatchOp[]; record?: boolean };

export type OpError = { index: number; op?: string; message: string; nodes: string[] };

export type Reply = { id: string; ok: boolean; errors: OpError[]; ids: Record<string, string>; created: string[] };

export type UpdateMsg = {
  kind: "update";
  base: number;
  version: number;
  changes: Change[];
  reply?: Reply;
  canUndo: boolean;
  canRedo: boolean;
};

export type ParamSchema = {
  name: string;
  kind: "int" | "float" | "number" | "bool" | "str" | "enum" | "ints" | "floats" | "int_or_ints" | "float_or_floats" | "json";
  default: unknown;
  min: number | null;
  max: number | null;
  choices: unknown[];
  length: number | null;
  /** Fewest elements of a tuple kind (0: the empty shape of a scalar is allowed). */
  min_length?: number;
  optional: boolean;
  required: boolean;
  doc: string;
};

export type OpSchema = {
  name: string;
  category: string;
  doc: string;
  params: ParamSchema[];
  inputs: string[];
  variadic: boolean;
  inputHint: string;
  source: string;
  /** A search-space part or an op's internal stage: listed only when the palette's "advanced" is on. */
  advanced?: boolean;
};

export type HighlightStyle = string | Record<string, unknown>;
/** The `view` trait: what the browser shows, kept across reloads and tabs. */
export type ViewState = {
  x?: number;
  y?: number;
  zoom?: number;
  root?: string | null;
  panels?: { palette?: boolean; inspector?: boolean; minimap?: boolean };
  advanced?: boolean;
};
export type EdgeStyle = { source: string; target: string; width?: number; color?: string; opacity?: number; label?: string };
