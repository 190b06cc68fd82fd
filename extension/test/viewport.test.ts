import { describe, expect, it } from "vitest";
import { boundsOf, defaultViewport, READABLE_ZOOM, usableViewport } from "../src/viewport";

describe("the first view", () => {
  const box = { width: 960, height: 700 };

  it("fits a small graph (at most zoom 1), centred", () => {
    const g = { x: 0, y: 0, width: 400, height: 300 };
    const vp = defaultViewport(g, g, box, "LR");
    expect(vp.zoom).toBe(1);
    expect(vp.x + 200).toBeCloseTo(480);
  });

  it("shows a big graph's start at the readable zoom instead of fitting it unreadably small", () => {
    const graph = { x: 0, y: 0, width: 220, height: 5000 }; // a 40-layer chain top down
    const start = { x: 18, y: 0, width: 184, height: 58 };
    const vp = defaultViewport(graph, start, box, "TB");
    expect(vp.zoom).toBe(READABLE_ZOOM);
    expect(vp.y).toBeCloseTo(24); // the top of the graph at the top edge
    expect(vp.x + (start.x + 92) * vp.zoom).toBeCloseTo(480); // the input centred across
    expect(13 * vp.zoom).toBeGreaterThanOrEqual(9); // 13 px names at least 9 px tall
  });

  it("ignores unusable saved viewports (the 0.05 zoom of a background tab, NaN, junk)", () => {
    expect(usableViewport({ x: 1, y: 2, zoom: 0.8 })).toEqual({ x: 1, y: 2, zoom: 0.8 });
    expect(usableViewport({ x: 1, y: 2, zoom: 0.01 })).toBeNull();
    expect(usableViewport({ x: NaN, y: 2, zoom: 1 })).toBeNull();
    expect(usableViewport(undefined)).toBeNull();
    expect(boundsOf([{ x: 0, y: 0, width: 10, height: 10 }, { x: 20, y: -5, width: 10, height: 10 }])).toEqual({ x: 0, y: -5, width: 30, height: 15 });
  });
});
