import { describe, expect, it } from "vitest";
import { findNodes, matchRank, rankOps } from "../src/search";
import type { OpSchema } from "../src/types";
import { docOf, n } from "./helpers";

const op = (name: string, doc = "", advanced = false): OpSchema => ({
  name, category: "c", doc, params: [], inputs: ["input"], variadic: false, inputHint: "", source: "builtin", advanced,
});

describe("ranking matches", () => {
  it("exact, then prefix, then word prefix, then anywhere, then the doc", () => {
    expect(matchRank("add", "add")).toBe(0);
    expect(Math.floor(matchRank("adaptive_avg_pool2d", "ad")!)).toBe(1);
    expect(Math.floor(matchRank("max_pool2d", "pool")!)).toBe(2);
    expect(Math.floor(matchRank("multihead_attention", "head")!)).toBe(3);
    expect(matchRank("add", "ad")!).toBeLessThan(matchRank("adaptive_avg_pool2d", "ad")!);
    expect(matchRank("relu", "rectif", "rectifier")).toBe(4);
    expect(matchRank("relu", "zz")).toBeNull();
  });

  it("the adder lists add before multihead_attention for 'ad', and hides advanced ops unless asked", () => {
    const ops = [op("multihead_attention", "attention over heads, ad hoc"), op("adaptive_avg_pool2d"), op("add"), op("mixed_op", "", true)];
    expect(rankOps(ops, "ad", false).map((o) => o.name)).toEqual(["add", "adaptive_avg_pool2d", "multihead_attention"]);
    expect(rankOps(ops, "mix", false)).toEqual([]);
    expect(rankOps(ops, "mix", true).map((o) => o.name)).toEqual(["mixed_op"]);
  });

  it("finds nodes inside blocks by name, best first", () => {
    const doc = docOf([n("conv1"), n("layer1/0/conv1"), n("layer1/0/bn1"), n("fc")]);
    expect(findNodes(doc, "conv1").map((x) => x.id)).toEqual(["conv1", "layer1/0/conv1"]);
    expect(findNodes(doc, "")).toEqual([]);
  });
});
