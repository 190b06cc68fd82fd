/**
 * Op categories in the palette and on the canvas: their order and colours (pure). A node's category colour is
 * its left stripe and its palette group's dot; blocks have their own. Categories not listed here (a user's
 * `@gb.op(category=...)`) come after, alphabetically, in a neutral colour.
 */

/** Palette order: what a network is built from first, then the specialised and internal groups. */
export const CATEGORY_ORDER = [
  "structure", "networks", "convolution", "linear", "embedding", "normalization", "activation", "pooling", "resize",
  "recurrent", "attention", "research", "regularization", "elementwise", "tensor", "tensor (low-level)", "reasoning",
  "detection", "search space", "search",
];

const COLOURS: Record<string, string> = {
  structure: "#78909c", convolution: "#1e88e5", linear: "#5c6bc0", embedding: "#ab47bc", normalization: "#26a69a",
  activation: "#66bb6a", pooling: "#29b6f6", resize: "#9ccc65", attention: "#ffa726", regularization: "#a1887f",
  elementwise: "#fbc02d", tensor: "#8d9ea7", reasoning: "#ec407a", detection: "#8d6e63", "search space": "#9e9e9e",
  search: "#9e9e9e", research: "#7e57c2", networks: "#00897b", recurrent: "#ff7043", "tensor (low-level)": "#b0bec5",
};
export const BLOCK_COLOUR = "#00897b"; // blocks, and the networks that drop in as blocks
const OTHER = "#bdbdbd";

/** The colour of `category` (blocks: `BLOCK_COLOUR`). */
export function categoryColour(category: string | undefined): string {
  return (category && COLOURS[category]) || OTHER;
}

/** Sort key: known categories in `CATEGORY_ORDER`, others after them by name. */
export function categoryRank(category: string): [number, string] {
  const i = CATEGORY_ORDER.indexOf(category);
  return [i < 0 ? CATEGORY_ORDER.length : i, category];
}
