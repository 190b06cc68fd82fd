import { describe, expect, it } from "vitest";
import { controlFor, describe as describeParam, formatValue, initialParams, paletteGroups, parseValue, suggest } from "../src/forms";
import type { OpSchema, ParamSchema } from "../src/types";

function param(kind: ParamSchema["kind"], extra: Partial<ParamSchema> = {}): ParamSchema {
  return { name: "p", kind, default: null, min: null, max: null, choices: [], length: null, optional: false, required: true, doc: "", ...extra };
}

describe("controls from the schema", () => {
  it("maps kinds to controls", () => {
    expect(controlFor(param("int"))).toBe("number");
    expect(controlFor(param("bool"))).toBe("checkbox");
    expect(controlFor(param("enum", { choices: ["a"] }))).toBe("select");
    expect(controlFor(param("int_or_ints"))).toBe("tuple");
    expect(controlFor(param("json"))).toBe("json");
    expect(describeParam(param("int", { min: 1, max: 2 ** 31 - 1, default: 3 }))).toBe("int, >= 1, default 3");
  });
});

describe("parseValue: what Python would accept", () => {
  it("checks integers and ranges", () => {
    const p = param("int", { name: "k", min: 1, max: 10 });
    expect(parseValue(p, "3")).toEqual({ ok: true, value: 3 });
    expect(parseValue(p, "0")).toEqual({ ok: false, error: "k must be >= 1, got 0" });
    expect(parseValue(p, "11")).toMatchObject({ ok: false });
    expect(parseValue(p, "2.5")).toMatchObject({ ok: false, error: expect.stringContaining("integer") });
    expect(parseValue(p, "x")).toMatchObject({ ok: false });
    expect(parseValue(p, "")).toMatchObject({ ok: false });
  });

  it("accepts floats, optional blanks, enums, booleans and JSON", () => {
    expect(parseValue(param("float", { min: 0, max: 1 }), "0.5")).toEqual({ ok: true, value: 0.5 });
    expect(parseValue(param("float", { optional: true }), " ")).toEqual({ ok: true, value: null });
    expect(parseValue(param("enum", { choices: ["zeros", "reflect"] }), "reflect")).toEqual({ ok: true, value: "reflect" });
    expect(parseValue(param("enum", { choices: ["zeros"] }), "nope")).toMatchObject({ ok: false });
    expect(parseValue(param("bool"), true)).toEqual({ ok: true, value: true });
    expect(parseValue(param("json"), '{"a": 1}')).toEqual({ ok: true, value: { a: 1 } });
    expect(parseValue(param("json"), "{a")).toMatchObject({ ok: false });
    expect(controlFor(param("number"))).toBe("number");
    expect(parseValue(param("number"), "3")).toEqual({ ok: true, value: 3 });
    expect(parseValue(param("number"), "1.5")).toEqual({ ok: true, value: 1.5 });
  });

  it("parses tuples with lengths; int_or_ints takes one int too", () => {
    const k = param("int_or_ints", { name: "kernel_size", min: 1, length: 2 });
    expect(parseValue(k, "3")).toEqual({ ok: true, value: 3 });
    expect(parseValue(k, "3, 5")).toEqual({ ok: true, value: [3, 5] });
    expect(parseValue(k, "(3, 5)")).toEqual({ ok: true, value: [3, 5] });
    expect(parseValue(k, "3, 5, 7")).toMatchObject({ ok: false, error: expect.stringContaining("2 values") });
    expect(parseValue(k, "3, 0")).toMatchObject({ ok: false, error: expect.stringContaining(">= 1") });
    expect(parseValue(param("ints", { name: "shape", min: 0 }), "1, 3, 32, 32")).toEqual({ ok: true, value: [1, 3, 32, 32] });
    expect(formatValue(k, [3, 5])).toBe("3, 5");
    expect(parseValue(param("ints", { name: "shape", min: 0, min_length: 0 }), "()")).toEqual({ ok: true, value: [] });
    expect(parseValue(param("ints", { name: "shape", min: 0 }), "()")).toMatchObject({ ok: false });
  });
});

describe("initial params of a dropped node", () => {
  const conv: OpSchema = {
    name: "conv2d", category: "convolution", doc: "", inputs: ["input"], variadic: false, inputHint: "", source: "builtin",
    params: [
      param("int", { name: "out_channels", min: 1 }),
      param("int_or_ints", { name: "kernel_size", min: 1, length: 2 }),
      param("int_or_ints", { name: "stride", default: 1, required: false }),
    ],
  };

  it("suggests valid values for required params only", () => {
    expect(initialParams(conv)).toEqual({ out_channels: 16, kernel_size: 3 });
    expect(suggest(param("ints", { name: "shape", min: 0 }))).toEqual([1, 3, 32, 32]);
    expect(suggest(param("enum", { choices: ["a", "b"] }))).toBe("a");
    expect(suggest(param("float", { min: 2 }))).toBe(2);
    for (const p of conv.params.filter((q) => q.required)) {
      const v = suggest(p);
      expect(parseValue(p, Array.isArray(v) ? v.join(", ") : String(v))).toMatchObject({ ok: true });
    }
  });

  it("groups the palette by category in palette order, filters by text, hides advanced ops", () => {
    const relu: OpSchema = { ...conv, name: "relu", category: "activation", doc: "rectifier", params: [] };
    const mine: OpSchema = { ...conv, name: "mine", category: "custom", doc: "a user's op", params: [] };
    const mixed: OpSchema = { ...conv, name: "mixed_op", category: "search space", doc: "a searched position", params: [], advanced: true };
    // structure, convolution, ... activation ... in CATEGORY_ORDER; unknown categories last.
    expect(paletteGroups([mine, relu, conv], "").map(([c]) => c)).toEqual(["convolution", "activation", "custom"]);
    expect(paletteGroups([conv, relu], "rectif")).toEqual([["activation", [relu]]]);
    expect(paletteGroups([conv, mixed], "").map(([c]) => c)).toEqual(["convolution"]);
    expect(paletteGroups([conv, mixed], "", true).map(([c]) => c)).toEqual(["convolution", "search space"]);
  });
});
