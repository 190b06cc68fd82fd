import { describe, expect, it } from "vitest";
import { actionFor, KEYMAP, keyOf } from "../src/keymap";

const key = (k: string, mods: Partial<{ ctrlKey: boolean; metaKey: boolean; shiftKey: boolean; altKey: boolean }> = {}) => ({
  key: k, ctrlKey: false, metaKey: false, shiftKey: false, altKey: false, ...mods,
});

describe("keymap", () => {
  it("names keys the way the table writes them", () => {
    expect(keyOf(key("z", { ctrlKey: true }))).toBe("Mod+Z");
    expect(keyOf(key("Z", { metaKey: true, shiftKey: true }))).toBe("Mod+Shift+Z");
    expect(keyOf(key("/", { shiftKey: true }))).toBe("/"); // shift is part of the character
  });

  it("maps each binding to its action; Ctrl and Cmd are the same", () => {
    expect(actionFor(key("z", { ctrlKey: true }))).toBe("undo");
    expect(actionFor(key("z", { metaKey: true, shiftKey: true }))).toBe("redo");
    expect(actionFor(key("g", { ctrlKey: true, shiftKey: true }))).toBe("ungroup");
    expect(actionFor(key("Delete"))).toBe("delete");
    expect(actionFor(key("f"))).toBe("fitSelection");
    expect(actionFor(key("q"))).toBeNull();
  });

  it("binds every key once", () => {
    const keys = KEYMAP.map((b) => b.keys);
    expect(new Set(keys).size).toBe(keys.length);
  });
});
