/**
 * The first view (pure; test/viewport.test.ts). Fitting a real network into the canvas makes it unreadable
 * (a ResNet-50 fits at zoom ~0.2: 13 px names become 3 px). So the default view fits the graph only when that
 * keeps node names legible (`READABLE_ZOOM`); otherwise it shows the graph's start (its inputs) at the
 * readable zoom, and the user scrolls on. A saved view (the widget's `view` trait) wins when it is usable.
 */
export type Viewport = { x: number; y: number; zoom: number };
export type Bounds = { x: number; y: number; width: number; height: number };

/** 13 px node names (styles.css) are ~10 px tall on screen at this zoom; the test asks for >= 9 px. */
export const READABLE_ZOOM = 0.75;
export const MIN_ZOOM = 0.05;
export const MAX_ZOOM = 3;
const PAD = 24; // px kept free around the drawing

/**
 * The default viewport of a `box.width` x `box.height` canvas showing `graph` (the drawing's bounds) whose
 * inputs lie in `start`: fit and centre it when its zoom is at least `READABLE_ZOOM` (at most 1), else the
 * readable zoom with the start at the leading edge (left for "LR", top for "TB"), centred across the flow.
 */
export function defaultViewport(graph: Bounds, start: Bounds, box: { width: number; height: number },
  direction: "LR" | "TB"): Viewport {
  const fit = Math.min((box.width - 2 * PAD) / Math.max(graph.width, 1), (box.height - 2 * PAD) / Math.max(graph.height, 1));
  if (fit >= READABLE_ZOOM) {
    const zoom = Math.min(fit, 1);
    return { zoom, x: box.width / 2 - (graph.x + graph.width / 2) * zoom, y: box.height / 2 - (graph.y + graph.height / 2) * zoom };
  }
  const zoom = READABLE_ZOOM;
  if (direction === "LR") {
    return { zoom, x: PAD - graph.x * zoom, y: box.height / 2 - (start.y + start.height / 2) * zoom };
  }
  return { zoom, x: box.width / 2 - (start.x + start.width / 2) * zoom, y: PAD - graph.y * zoom };
}

/** A saved viewport if it is usable (finite, zoom within React Flow's limits), else null. */
export function usableViewport(saved: unknown): Viewport | null {
  if (!saved || typeof saved !== "object") return null;
  const { x, y, zoom } = saved as Record<string, unknown>;
  if (typeof x !== "number" || typeof y !== "number" || typeof zoom !== "number") return null;
  if (![x, y, zoom].every(Number.isFinite) || zoom < MIN_ZOOM || zoom > MAX_ZOOM) return null;
  return { x, y, zoom };
}

/** Bounds around `rects` (absolute boxes); a zero box at the origin for none. */
export function boundsOf(rects: Bounds[]): Bounds {
  if (!rects.length) return { x: 0, y: 0, width: 0, height: 0 };
  const x = Math.min(...rects.map((r) => r.x));
  const y = Math.min(...rects.map((r) => r.y));
  const right = Math.max(...rects.map((r) => r.x + r.width));
  const bottom = Math.max(...rects.map((r) => r.y + r.height));
  return { x, y, width: right - x, height: bottom - y };
}
