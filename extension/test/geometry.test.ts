import { describe, expect, it } from "vitest";
import { KeyedStore } from "../src/keyed";
import { handlesOf } from "../src/flow";
import { labelAnchor, labelledPorts, nodeHeight, NODE_W, PORT_ROW, TITLE_H } from "../src/geometry";
import { n } from "./helpers";

const mha = n("attn", [["h", 0], ["h", 0], ["h", 0]], { op: "multihead_attention", inputNames: ["query", "key", "value"] });

describe("labelled ports", () => {
  it("multi-input ops label their ports, with one row each left to right", () => {
    expect(labelledPorts(mha)).toBe(true);
    expect(labelledPorts(n("r", [["x", 0]]))).toBe(false);
    const h = nodeHeight(mha);
    expect(h).toBeGreaterThanOrEqual(TITLE_H + 3 * PORT_ROW);
    const ins = handlesOf(NODE_W, h, 3, 1, false, 1, true).filter((x) => x.type === "target");
    const ys = ins.map((x) => x.y + (x.height ?? 0) / 2);
    expect(ys).toEqual([TITLE_H + PORT_ROW / 2, TITLE_H + 1.5 * PORT_ROW, TITLE_H + 2.5 * PORT_ROW]);
  });

  it("shape labels of edges into neighbouring ports do not overlap (14 px tall, ~90 px wide)", () => {
    const mid = { x: 0, y: 0 };
    for (const vertical of [false, true]) {
      const boxes = [0, 1, 2].map((port) => {
        const target = vertical ? { x: 46 * (port + 1), y: 500 } : { x: 500, y: TITLE_H + PORT_ROW * (port + 0.5) };
        const at = labelAnchor(mid, target, port, 3, vertical);
        return { x: at.x - 45, y: at.y - 7, w: 90, h: 14 };
      });
      for (let i = 0; i < 3; i++) for (let j = i + 1; j < 3; j++) {
        const a = boxes[i], b = boxes[j];
        const hit = a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
        expect(hit).toBe(false);
      }
    }
    expect(labelAnchor(mid, { x: 9, y: 9 }, 0, 1, false)).toBe(mid); // one input: the curve's middle
  });
});

describe("keyed store", () => {
  it("notifies only the keys whose value changed", () => {
    const store = new KeyedStore<{ v: number }>();
    const calls: string[] = [];
    store.subscribe("a", () => calls.push("a"));
    store.subscribe("b", () => calls.push("b"));
    store.replace(new Map([["a", { v: 1 }], ["b", { v: 2 }]]));
    const a = store.get("a");
    store.replace(new Map([["a", { v: 1 }], ["b", { v: 3 }]]), (x, y) => x.v === y.v);
    expect(store.get("a")).toBe(a); // equal: the old object stays
    store.replace(new Map([["b", { v: 3 }]]), (x, y) => x.v === y.v);
    expect(calls).toEqual(["a", "b", "b", "a"]);
  });
});
