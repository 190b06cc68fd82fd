import { describe, expect, it } from "vitest";
import { errorRoles, rootErrors } from "../src/errors";
import { block, docOf, n } from "./helpers";

describe("error roles", () => {
  it("one bad add: the add is the root, everything downstream waits on it", () => {
    const doc = docOf([
      n("x", [], { op: "input" }), n("a", [["x", 0]]), n("b", [["x", 0]]),
      n("sum", [["a", 0], ["b", 0]], { error: "shapes do not match" }),
      n("r1", [["sum", 0]], { error: "its input 'sum' is invalid" }),
      n("r2", [["r1", 0]], { error: "its input 'r1' is invalid" }),
      n("out", [["r2", 0]], { error: "its input 'r2' is invalid" }),
    ]);
    const roles = errorRoles(doc);
    expect(rootErrors(roles)).toEqual(["sum"]);
    expect(roles.get("out")).toEqual({ kind: "waiting", root: "sum" });
    expect(roles.get("r1")).toEqual({ kind: "waiting", root: "sum" });
    expect(roles.has("a")).toBe(false);
  });

  it("an error inside a block: the inner node is the root, the block holds it, its users wait on the inner node", () => {
    const doc = docOf([
      n("x", [], { op: "input" }),
      block("res", [["x", 0]], false, { error: "inside block: ..." }),
      n("res/x", [], { op: "input" }),
      n("res/c1", [["res/x", 0]]),
      n("res/sum", [["res/c1", 0], ["res/x", 0]], { error: "14 vs 16" }),
      n("res/y", [["res/sum", 0]], { error: "its input 'sum' is invalid" }),
      n("act", [["res", 0]], { error: "its input 'res' is invalid" }),
      n("loose", [null], { error: "input 'input' is not connected" }),
    ]);
    const roles = errorRoles(doc);
    expect(rootErrors(roles)).toEqual(["res/sum", "loose"]); // two mistakes, two roots: the header says 2
    expect(roles.get("res")).toEqual({ kind: "inside", root: "res/sum" });
    expect(roles.get("act")).toEqual({ kind: "waiting", root: "res/sum" });
    expect(roles.get("res/y")).toEqual({ kind: "waiting", root: "res/sum" });
  });
});
