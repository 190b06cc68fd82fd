/**
 * Parameter forms generated from an op's typed schema (ir/schema.py `Param.to_json`): which control
 * each kind gets, how text becomes a value, and the checks Python would make, so a bad value is shown
 * inline and never sent. Pure functions, unit-tested in test/forms.test.ts.
 */
import { categoryRank } from "./categories";
import { rankOps } from "./search";
import type { OpSchema, ParamSchema } from "./types";

export type Control = "number" | "checkbox" | "select" | "text" | "tuple" | "json";

export type Parsed = { ok: true; value: unknown } | { ok: false; error: string };

/** The control for a parameter kind: numbers, checkbox, dropdown, tuple text ("3, 5"), JSON. */
export function controlFor(p: ParamSchema): Control {
  switch (p.kind) {
    case "int":
    case "float":
    case "number":
      return "number";
    case "bool":
      return "checkbox";
    case "enum":
      return "select";
    case "str":
      return "text";
    case "json":
      return "json";
    default:
      return "tuple";
  }
}

function range(p: ParamSchema): string {
  const lo = p.min ?? null;
  const hi = p.max ?? null;
  if (lo === null && hi === null) return "";
  if (hi === null || hi >= 2 ** 31 - 1) return `>= ${lo}`;
  if (lo === null) return `<= ${hi}`;
  return `in [${lo}, ${hi}]`;
}

/** A short hint shown under the field: kind, range, default. */
export function describe(p: ParamSchema): string {
  const parts: string[] = [p.kind.replace(/_/g, " ")];
  const r = range(p);
  if (r) parts.push(r);
  if (p.length) parts.push(`${p.length} values`);
  if (p.default !== null && p.default !== undefined) parts.push(`default ${formatValue(p, p.default)}`);
  return parts.join(", ");
}

function scalar(p: ParamSchema, text: string, kind: "int" | "float"): Parsed {
  const t = text.trim();
  if (t === "") return { ok: false, error: `${p.name} needs a value` };
  const v = Number(t);
  if (!Number.isFinite(v)) return { ok: false, error: `${p.name} must be a number, got '${t}'` };
  if (kind === "int" && !Number.isInteger(v)) return { ok: false, error: `${p.name} must be an integer, got ${t}` };
  if (p.min !== null && p.min !== undefined && v < p.min) return { ok: false, error: `${p.name} must be >= ${p.min}, got ${v}` };
  if (p.max !== null && p.max !== undefined && v > p.max) return { ok: false, error: `${p.name} must be <= ${p.max}, got ${v}` };
  return { ok: true, value: v };
}

/** Text from the form -> a value Python will accept, or the reason it would not. */
export function parseValue(p: ParamSchema, input: string | boolean): Parsed {
  if (typeof input === "boolean") return p.kind === "bool" ? { ok: true, value: input } : { ok: false, error: "not a flag" };
  const text = input.trim();
  if (text === "" && p.optional) return { ok: true, value: null };
  switch (p.kind) {
    case "int":
    case "float":
      return scalar(p, text, p.kind);
    case "number": // an int or a float, as typed ("1" keeps an integer tensor integer)
      return scalar(p, text, "float");
    case "bool":
      if (text === "true" || text === "false") return { ok: true, value: text === "true" };
      return { ok: false, error: `${p.name} must be true or false` };
    case "enum": {
      const hit = p.choices.find((c) => String(c) === text);
      return hit === undefined ? { ok: false, error: `${p.name} must be one of ${p.choices.join(", ")}` } : { ok: true, value: hit };
    }
    case "str":
      return { ok: true, value: input };
    case "json":
      try {
        return { ok: true, value: JSON.parse(text) };
      } catch {
        return { ok: false, error: `${p.name} must be JSON, e.g. [1, 2] or {"a": 1}` };
      }
    default: {
      const kind = p.kind.startsWith("int") ? "int" : "float";
      const single = p.kind.endsWith("_or_ints") || p.kind.endsWith("_or_floats");
      const parts = text.replace(/^[([]|[)\]]$/g, "").split(",").map((s) => s.trim()).filter((s) => s !== "");
      if (!parts.length && p.min_length === 0 && !single) return { ok: true, value: [] }; // "()": a scalar's shape
      if (!parts.length) return { ok: false, error: `${p.name} needs ${single ? "a number or " : ""}a list like 3, 5` };
      const values: number[] = [];
      for (const part of parts) {
        const r = scalar(p, part, kind);
        if (!r.ok) return r;
        values.push(r.value as number);
      }
      if (single && values.length === 1 && !/,/.test(text)) return { ok: true, value: values[0] };
      if (p.length && values.length !== p.length) {
        return { ok: false, error: `${p.name} needs ${p.length} values${single ? " (or one)" : ""}, got ${values.length}` };
      }
      return { ok: true, value: values };
    }
  }
}

/** A value -> the text shown in its field. */
export function formatValue(p: ParamSchema, value: unknown): string {
  if (value === null || value === undefined) return "";
  if (Array.isArray(value)) return value.join(", ");
  if (p.kind === "json") return JSON.stringify(value);
  return String(value);
}

const SIZE_WORDS = /channels|features|dim|embed|heads|num_|size|hidden|units/;

/** A value for a required parameter that has no default, so a dropped node starts valid. */
export function suggest(p: ParamSchema): unknown {
  if (p.default !== null && p.default !== undefined) return p.default;
  if (p.optional) return null;
  const lo = p.min ?? null;
  const clamp = (v: number) => Math.max(lo ?? v, Math.min(p.max ?? v, v));
  switch (p.kind) {
    case "int":
      if (p.name === "kernel_size") return clamp(3);
      if (p.name.includes("heads")) return clamp(1);
      return clamp(SIZE_WORDS.test(p.name) ? 16 : 1);
    case "float":
    case "number":
      return clamp(1.0);
    case "bool":
      return false;
    case "enum":
      return p.choices[0];
    case "str":
      return "";
    case "json":
      return null;
    case "int_or_ints":
    case "float_or_floats":
      return clamp(p.name.includes("kernel") ? 3 : 1);
    default: {
      if (p.name === "shape") return [1, 3, 32, 32];
      const n = p.length ?? 1;
      return Array.from({ length: n }, () => clamp(1));
    }
  }
}

/** Initial params of a node dropped from the palette: defaults, plus suggestions for required ones. */
export function initialParams(schema: OpSchema): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const p of schema.params) {
    if (p.required) out[p.name] = suggest(p);
  }
  return out;
}

/** Palette groups: categories in `CATEGORY_ORDER`, ops matching a search text best first (search.ts), advanced
 * ops only when `advanced`. */
export function paletteGroups(ops: OpSchema[], query: string, advanced = false): [string, OpSchema[]][] {
  const groups = new Map<string, OpSchema[]>();
  for (const op of rankOps(ops, query, advanced)) {
    if (!groups.has(op.category)) groups.set(op.category, []);
    groups.get(op.category)!.push(op);
  }
  const rank = (c: string) => categoryRank(c);
  return [...groups.entries()].sort(([a], [b]) => rank(a)[0] - rank(b)[0] || a.localeCompare(b));
}
