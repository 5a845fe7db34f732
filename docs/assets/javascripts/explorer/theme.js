// Theme: the palette tokens a spec may use, and the Vega config for the current palette.
//
// A producer writes colours as CSS custom properties, e.g. "var(--fig-ink)" (explorer.charts.INK).
// Before a spec is drawn every such token, wherever it appears in a string (a colour, a scale
// range, an expression), is replaced by the value the stylesheet gives it for the palette the
// reader has chosen, so marks, notes and readouts follow the light/dark toggle.

const TOKEN = /var\(--(fig-[a-z0-9-]+)\)/g;

export const isDark = () => document.body.getAttribute("data-md-color-scheme") === "slate";

export function tokenValues() {
  const style = getComputedStyle(document.body);
  const cache = new Map();
  return (name) => {
    if (!cache.has(name)) {
      const value = name === "fig-font" // the page's own font stack; quotes as ' so it can sit inside an expression
        ? (style.fontFamily || "sans-serif").replace(/"/g, "'") : style.getPropertyValue(`--${name}`).trim();
      if (!value) console.warn(`figure theme: no value for --${name}`);
      cache.set(name, value || "#888888");
    }
    return cache.get(name);
  };
}

/** A deep copy of `node` with every var(--fig-...) token replaced by its current value. */
export function resolveTokens(node, value = tokenValues()) {
  if (typeof node === "string") return node.includes("var(--fig-") ? node.replace(TOKEN, (_, name) => value(name)) : node;
  if (Array.isArray(node)) return node.map((v) => resolveTokens(v, value));
  if (node && typeof node === "object") {
    const out = {};
    for (const [k, v] of Object.entries(node)) out[k] = resolveTokens(v, value);
    return out;
  }
  return node;
}

// Type sizes (CSS px). The floor is 10 px everywhere, so a figure drawn at its own size is legible
// on a laptop (10 px) and on a phone (9 px).
export const FONT = { label: 11, title: 12, header: 12, heading: 13, mark: 11 };

// Room-dependent limits are written as these placeholders and filled for the figure's room (`fillRoom`),
// so one template serves every width: the build compiles specs with the template as it is
// (explorer/site/compiled.py keeps a copy, checked against this one by the browser tests).
export const ROOM = { less40: 987640, less10: 987610 };

/** The Vega config of a palette as tokens (var(--fig-...)), with room placeholders (see ROOM). */
export function configTemplate({ narrow }) {
  const ink = "var(--fig-ink)", muted = "var(--fig-muted)", rule = "var(--fig-rule)", font = "var(--fig-font)";
  const axis = {
    labelColor: muted, titleColor: ink, domainColor: muted, tickColor: muted, gridColor: rule,
    labelFontSize: FONT.label, titleFontSize: FONT.title, titleFontWeight: "normal", labelFont: font, titleFont: font,
    labelLimit: narrow ? 120 : 180, titleLimit: ROOM.less40,
  };
  const legend = {
    labelColor: ink, titleColor: ink, labelFontSize: FONT.label, titleFontSize: FONT.title, titleFontWeight: "normal",
    labelFont: font, titleFont: font, labelLimit: narrow ? 140 : 220, titleLimit: ROOM.less40,
    ...(narrow ? { orient: "bottom", direction: "horizontal", columns: 2 } : {}),
  };
  return {
    background: null,
    font,
    view: { stroke: rule },
    axis,
    legend,
    header: { labelColor: ink, titleColor: ink, labelFontSize: FONT.header, titleFontSize: FONT.heading, labelFont: font, titleFont: font,
      titleFontWeight: "normal", labelLimit: narrow ? 140 : 240 },
    title: { color: ink, subtitleColor: muted, fontSize: FONT.heading, subtitleFontSize: FONT.label, fontWeight: "normal",
      font, anchor: "start", limit: ROOM.less10 },
    text: { color: ink, fontSize: FONT.mark, font },
    mark: { color: "var(--fig-s1)" },
    rule: { color: muted },
    range: { category: ["s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10"].map((s) => `var(--fig-${s})`) },
    style: { "guide-label": { fill: muted }, "guide-title": { fill: ink }, "group-title": { fill: ink } },
  };
}

/** A copy of `node` (a config or a compiled Vega spec) with the room placeholders filled for `width`. */
export function fillRoom(node, width) {
  const values = { [ROOM.less40]: Math.max(160, width - 40), [ROOM.less10]: Math.max(160, width - 10) };
  const visit = (v) => {
    if (typeof v === "number") return v in values ? values[v] : v;
    if (Array.isArray(v)) return v.map(visit);
    if (v && typeof v === "object") {
      const out = {};
      for (const [k, x] of Object.entries(v)) out[k] = visit(x);
      return out;
    }
    return v;
  };
  return visit(node);
}

/** Vega config for the current palette: axes, legends, headers and titles in the page's colours. */
export function vegaConfig({ narrow, width }) {
  return resolveTokens(fillRoom(configTemplate({ narrow }), width));
}
