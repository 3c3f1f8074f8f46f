// Colour and short glyph per action family, so nodes and sidebar entries read at a glance.

const KNOWN: Record<string, { color: string; glyph: string }> = {
  shell: { color: "#475569", glyph: ">_" },
  http: { color: "#2563eb", glyph: "⇄" },
  file: { color: "#0d9488", glyph: "▤" },
  email: { color: "#c2410c", glyph: "✉" },
  transform: { color: "#7c3aed", glyph: "ƒ" },
  github: { color: "#1f2937", glyph: "⌥" },
  flow: { color: "#b45309", glyph: "⏸" },
};

const PALETTE = ["#0369a1", "#15803d", "#a21caf", "#b45309", "#be123c", "#4d7c0f"];

export function familyOf(action: string): string {
  return action.includes(".") ? action.slice(0, action.indexOf(".")) : action;
}

export function familyStyle(family: string): { color: string; glyph: string } {
  if (KNOWN[family]) return KNOWN[family];
  let hash = 0;
  for (const ch of family) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
  return { color: PALETTE[hash % PALETTE.length], glyph: family.slice(0, 1).toUpperCase() || "•" };
}
