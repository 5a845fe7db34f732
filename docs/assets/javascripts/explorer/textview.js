// Text views: the text a model reads, shown as text under its chart (as CircuitsVis does), drawn
// from the figure's own Vega datasets and signals, offline.
//
// A figure asks for one with `usermeta.explorer.text` (written by explorer.charts.text_view):
//
//   tokens   name of the Vega dataset with one row per token, in reading order (required)
//   field    the row's token text ("t"); shown with whitespace made visible (· ⏎ →)
//   position the row's position field ("p")
//   label    the line above the tokens, e.g. "The prompt: hover a token"
//   hover    a Vega signal that holds the position under the pointer (or keyboard focus): read at
//            rest (the token shown first), written on hover so the chart can mark it
//   color    colour every token by a number:
//              {data, match, values | key + value, scale?, kind?: "sequential" | "diverging",
//               domain?, label?, format?}
//            the rows of `data` whose fields equal `match` (see below) give the numbers: `values`
//            names a list field indexed by token position (an attention row), or `key` and
//            `value` name the row's position and number fields (one row per token). A token with
//            no number (a key after the query) is drawn as masked: faint, no colour.
//   details  a small table for the hovered token:
//              {data, match, columns: [{field, label?, format?, token?}], sort?, limit?, title?}
//            (a `token` column is token text: its whitespace is made visible)
//            `sort` is "f", "-f" (descending), "|f|" or "-|f|" (by absolute value); `title` is a
//            template such as "{@text} (position {@pos}), then {@next}".
//
// Templates (`details.title`, `color.legend`) write {field} for a field of the first matching row
// and {@field} for a field of the hovered token's row; {@text} is its text as shown, {@pos} its
// position, {@label} the colour's label.
//
// `match` maps a data field to what it must equal: a number or boolean (itself), "@hover" (the
// hovered position), or a signal path such as "pick.l" (view.signal("pick").l; an array gives its
// first element, which is how a Vega-Lite point selection resolves). Templates write fields as
// {name} or {name:fmt} with fmt one of .2f, +.2f, .0%, .1%, d.
//
// Everything from data is set with textContent, never as HTML. The tokens form a listbox: one tab
// stop, arrow keys move the token, a live region reads out the details. Colours are the palette
// tokens of figures.css (the sequential and diverging scales of explorer.charts).

const VISIBLE = [[/ /g, "·"], [/\n/g, "⏎"], [/\t/g, "→"], [/\r/g, "␍"]];
let uid = 0;

/** A token's text with its whitespace drawn (the producers' own convention, explorer.models.tokenizer). */
export function visible(text) {
  let out = String(text ?? "");
  for (const [pattern, mark] of VISIBLE) out = out.replace(pattern, mark);
  return out;
}

// A token that ends with a newline ends its line; one with a newline inside ("⏎···", a newline and
// the next line's indent) starts the next line.
const breakAfter = (raw, shown) => /\n$/.test(raw) || /⏎$/.test(shown);
const breakBefore = (raw, shown) => !breakAfter(raw, shown) && (raw.includes("\n") || shown.includes("⏎"));

function readSignal(view, path) {
  const [name, ...rest] = String(path).split(".");
  let value;
  try { value = view.signal(name); } catch (e) { return undefined; }
  for (const key of rest) value = value == null ? undefined : value[key];
  return Array.isArray(value) ? value[0] : value;
}

// A dataset of the live view; one the spec loads but no mark uses (Vega-Lite leaves it out of the
// view) is read from the file the figure's data control loaded.
function readData(view, name, record) {
  try { return view.data(name) || []; } catch (e) {
    const payload = record && record.payload;
    return (payload && Array.isArray(payload[name]) && payload[name]) || [];
  }
}

const signalsOf = (match) => Object.values(match || {})
  .filter((v) => typeof v === "string" && !v.startsWith("@"))
  .map((v) => v.split(".")[0]);

function matcher(view, match, hovered) {
  const wanted = Object.entries(match || {}).map(([field, spec]) => {
    if (spec === "@hover") return [field, hovered];
    if (typeof spec === "string") return [field, readSignal(view, spec)];
    return [field, spec];
  });
  return (row) => wanted.every(([field, value]) => value !== undefined && String(row[field]) === String(value));
}

function format(value, fmt) {
  if (value === null || value === undefined || value === "") return "–";
  if (typeof value !== "number") return String(value);
  if (!fmt) return Number.isInteger(value) ? String(value) : String(Math.round(value * 1000) / 1000);
  const m = /^(\+)?\.(\d)(f|%)$/.exec(fmt);
  if (fmt === "d") return String(Math.round(value));
  if (!m) return String(value);
  const digits = Number(m[2]);
  const text = m[3] === "%" ? `${(value * 100).toFixed(digits)}%` : value.toFixed(digits);
  return m[1] && value >= 0 ? `+${text}` : text.replace("-", "−");
}

function fill(template, row, extra) {
  return String(template).replace(/\{(@?\w+)(?::([^}]+))?\}/g, (_, name, fmt) => format(name.startsWith("@") ? extra[name] : row[name], fmt));
}

function sorter(sort) {
  if (!sort) return null;
  const m = /^(-)?(\|)?(\w+)\|?$/.exec(sort);
  if (!m) return null;
  const [, desc, abs, field] = m;
  const key = (row) => { const v = Number(row[field]); return abs ? Math.abs(v) : v; };
  return (a, b) => (desc ? key(b) - key(a) : key(a) - key(b));
}

// ---------------------------------------------------------------------------------------------
// Colours: the palette tokens of figures.css, mixed as the chart's scale mixes them
// (explorer.charts.sequential / diverging); the text on a token takes ink or paper, whichever
// contrasts more with its background.

let probe = null;

/** Any CSS colour (a palette token included) as [r, g, b]. */
function rgb(css) {
  if (!probe) {
    probe = document.createElement("span");
    probe.hidden = true;
    document.body.appendChild(probe);
  }
  probe.style.color = "";
  probe.style.color = css;
  const text = getComputedStyle(probe).color;
  let m = /rgba?\(([^)]+)\)/.exec(text);
  if (m) return m[1].split(",").slice(0, 3).map(Number);
  m = /color\(srgb ([^)]+)\)/.exec(text);
  if (m) return m[1].trim().split(/\s+/).slice(0, 3).map((v) => Math.round(Number(v) * 255));
  return [128, 128, 128];
}

const mix = (a, b, t) => a.map((v, i) => Math.round(v + (b[i] - v) * t));
const luminance = (c) => {
  const [r, g, b] = c.map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
};
const contrast = (a, b) => { const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };

function palette() {
  const names = ["seq-0", "seq-1", "seq-2", "neg", "zero", "pos", "ink", "paper"];
  return Object.fromEntries(names.map((n) => [n, rgb(`var(--fig-${n})`)]));
}

function colourOf(v, spec, colours) {
  const [lo, hi] = spec.domain || (spec.kind === "diverging" ? [-1, 1] : [0, 1]);
  let background;
  if (spec.kind === "diverging") {
    const limit = Math.max(Math.abs(lo), Math.abs(hi)) || 1;
    const t = Math.max(-1, Math.min(1, v / limit));
    background = mix(colours.zero, t < 0 ? colours.neg : colours.pos, Math.abs(t));
  } else {
    const t = Math.max(0, Math.min(1, (v - lo) / ((hi - lo) || 1)));
    background = t <= 0.5 ? mix(colours["seq-0"], colours["seq-1"], t * 2) : mix(colours["seq-1"], colours["seq-2"], (t - 0.5) * 2);
  }
  const ink = contrast(colours.ink, background) >= contrast(colours.paper, background) ? colours.ink : colours.paper;
  return { background: `rgb(${background.join(",")})`, ink: `rgb(${ink.join(",")})` };
}

// ---------------------------------------------------------------------------------------------

function build(record, spec) {
  let box = record.el.querySelector(":scope > .explorer-textview");
  if (!box) {
    box = document.createElement("div");
    box.className = "explorer-textview";
    record.el.insertBefore(box, record.el.querySelector(":scope > figcaption"));
  }
  box.replaceChildren();
  const id = `explorer-textview-${++uid}`;
  const label = document.createElement("p");
  label.className = "explorer-textview__label";
  label.id = `${id}-label`;
  label.textContent = spec.label || "The text the model reads: hover a token, or focus it and use the arrow keys.";
  const tokens = document.createElement("div");
  tokens.className = "explorer-textview__tokens";
  tokens.setAttribute("role", "listbox");
  tokens.setAttribute("aria-labelledby", label.id);
  tokens.setAttribute("aria-orientation", "horizontal");
  const detail = document.createElement("div");
  detail.className = "explorer-textview__detail";
  detail.setAttribute("aria-live", "polite");
  box.append(label, tokens);
  if (spec.color) {
    const key = document.createElement("p");
    key.className = "explorer-textview__key";
    box.appendChild(key);
  }
  box.appendChild(detail);
  return { box, tokens, detail, key: box.querySelector(".explorer-textview__key"), id };
}

/** Draw (or refresh) the text view of a figure: called after every draw and control change. */
export function updateTextView(record) {
  const spec = record.meta && record.meta.text;
  const old = record.textview;
  if (!spec || !spec.tokens) {
    if (old) old.parts.box.remove();
    record.textview = null;
    return;
  }
  const view = record.view;
  if (!view) return;
  const position = spec.position || "p";
  const field = spec.field || "t";
  const rows = readData(view, spec.tokens, record).slice().sort((a, b) => Number(a[position]) - Number(b[position]));
  const signature = rows.map((r) => `${r[position]}:${r[field]}`).join("\u0000");
  let tv = old;
  if (!tv || tv.view !== view || tv.signature !== signature) {
    const parts = tv && tv.parts.box.isConnected ? tv.parts : build(record, spec);
    const fresh = !tv || tv.signature !== signature;
    if (tv) forget(tv);
    tv = { record, view, spec, parts, signature, rows, position, field, spans: new Map(), listeners: [],
      hovered: fresh || !tv ? initialHover(view, spec, rows, position) : tv.hovered };
    record.textview = tv;
    drawTokens(tv);
    listen(record, tv);
  }
  paint(tv);
}

function initialHover(view, spec, rows, position) {
  const asked = spec.hover ? readSignal(view, spec.hover) : undefined;
  const known = rows.map((r) => Number(r[position]));
  if (asked !== undefined && known.includes(Number(asked))) return Number(asked);
  if (spec.default !== undefined && known.includes(Number(spec.default))) return Number(spec.default);
  return known.length ? known[0] : undefined;
}

function drawTokens(tv) {
  const { parts, rows, position, field } = tv;
  parts.tokens.replaceChildren();
  let line = newLine(parts.tokens);
  for (const row of rows) {
    const p = Number(row[position]);
    const raw = String(row[field] ?? "");
    const shown = visible(raw);
    const span = document.createElement("span");
    span.className = "explorer-textview__token";
    span.setAttribute("role", "option");
    span.id = `${parts.id}-t${p}`;
    span.dataset.p = String(p);
    span.tabIndex = -1;
    span.textContent = shown || "∅"; // text, never HTML
    span.addEventListener("pointerenter", () => hover(tv, p, false));
    span.addEventListener("focus", () => hover(tv, p, false));
    span.addEventListener("click", () => { hover(tv, p, false); span.focus({ preventScroll: true }); });
    span.addEventListener("keydown", (event) => key(tv, p, event));
    if (breakBefore(raw, shown) && line.childElementCount) line = newLine(parts.tokens);
    line.appendChild(span);
    tv.spans.set(p, { span, shown });
    if (breakAfter(raw, shown)) line = newLine(parts.tokens);
  }
}

function newLine(container) {
  const line = document.createElement("span");
  line.className = "explorer-textview__line";
  line.setAttribute("role", "presentation");
  container.appendChild(line);
  return line;
}

function key(tv, p, event) {
  const order = [...tv.spans.keys()];
  const i = order.indexOf(p);
  const step = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 }[event.key];
  let next = null;
  if (step) next = order[Math.max(0, Math.min(order.length - 1, i + step))];
  else if (event.key === "Home") next = order[0];
  else if (event.key === "End") next = order[order.length - 1];
  if (next === null || next === undefined) return;
  event.preventDefault();
  tv.spans.get(next).span.focus();
}

function hover(tv, p, quiet) {
  if (tv.hovered === p) return;
  tv.hovered = p;
  paint(tv);
  if (!quiet && tv.spec.hover) {
    try { tv.view.signal(tv.spec.hover, p).runAsync(); } catch (e) { /* the chart has no such signal */ }
  }
}

function listen(record, tv) {
  const names = new Set([...signalsOf(tv.spec.color && tv.spec.color.match), ...signalsOf(tv.spec.details && tv.spec.details.match)]);
  for (const name of names) {
    const handler = () => { if (record.textview === tv) paint(tv); };
    try {
      tv.view.addSignalListener(name, handler);
      tv.listeners.push([name, handler]);
    } catch (e) { console.warn(`text view: figure ${record.id} has no signal ${name}`); }
  }
}

function forget(tv) { // the view may live on (new data fed into it): drop the old text view's listeners
  for (const [name, handler] of tv.listeners || []) {
    try { tv.view.removeSignalListener(name, handler); } catch (e) { /* finalized with its view */ }
  }
}

function paint(tv) {
  const { spec, view, spans, parts } = tv;
  const p = tv.hovered;
  const current = spans.get(p);
  for (const [q, { span }] of spans) {
    const on = q === p;
    span.setAttribute("aria-selected", on ? "true" : "false");
    span.tabIndex = on || (current === undefined && q === spans.keys().next().value) ? 0 : -1;
    span.classList.toggle("is-current", on);
  }
  const values = spec.color ? numbers(tv, spec.color, p) : null;
  const colours = values ? palette() : null;
  for (const [q, { span, shown }] of spans) {
    let note = "";
    span.classList.remove("is-masked");
    span.style.removeProperty("background-color");
    span.style.removeProperty("color");
    if (values) {
      const v = values.get(q);
      if (v === undefined) {
        span.classList.add("is-masked");
        note = `, ${spec.color.masked || "no value"}`;
      } else {
        const c = colourOf(v, spec.color, colours);
        span.style.backgroundColor = c.background;
        span.style.color = c.ink;
        note = `, ${spec.color.label || "value"} ${format(v, spec.color.format || ".2f")}`;
      }
    }
    span.title = `position ${q}: ${shown}${note}`;
    span.setAttribute("aria-label", `${q}: ${shown}${note}`);
  }
  if (parts.key && spec.color) parts.key.textContent = legend(tv);
  drawDetails(tv);
}

function numbers(tv, spec, hovered) {
  const rows = readData(tv.view, spec.data, tv.record).filter(matcher(tv.view, spec.match, hovered));
  const scale = spec.scale ?? 1;
  const out = new Map();
  if (spec.values) {
    const list = rows.length ? rows[0][spec.values] : null;
    if (Array.isArray(list)) list.forEach((v, i) => { if (v !== null && v !== undefined) out.set(i, Number(v) * scale); });
  } else if (spec.key && spec.value) {
    for (const row of rows) if (row[spec.value] !== null && row[spec.value] !== undefined) out.set(Number(row[spec.key]), Number(row[spec.value]) * scale);
  }
  return out;
}

/** Template values for the hovered token: {@text}, {@pos} and {@<field>} of its row. */
function hoveredFields(tv) {
  const p = tv.hovered;
  const current = tv.spans.get(p);
  const row = tv.rows.find((r) => Number(r[tv.position]) === p) || {};
  const extra = {};
  for (const [k, v] of Object.entries(row)) extra[`@${k}`] = typeof v === "string" ? visible(v) : v;
  return { ...extra, "@text": current ? current.shown : "", "@pos": p };
}

function legend(tv) {
  const spec = tv.spec.color;
  return fill(spec.legend || "Colour: {@label}.", {}, { ...hoveredFields(tv), "@label": spec.label || "value" });
}

function drawDetails(tv) {
  const { spec, view, parts } = tv;
  const p = tv.hovered;
  const extra = hoveredFields(tv);
  parts.detail.replaceChildren();
  const details = spec.details;
  if (!details) return;
  let rows = readData(view, details.data, tv.record).filter(matcher(view, details.match, p));
  if (details.title) { // its fields come from the first matching row
    const title = document.createElement("p");
    title.className = "explorer-textview__title";
    title.textContent = fill(details.title, rows[0] || {}, extra);
    parts.detail.appendChild(title);
  }
  const order = sorter(details.sort);
  if (order) rows = rows.slice().sort(order);
  if (details.limit) rows = rows.slice(0, details.limit);
  if (!rows.length) return;
  const table = document.createElement("table");
  table.className = "explorer-textview__table";
  const head = table.createTHead().insertRow();
  for (const column of details.columns) {
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = column.label || column.field;
    head.appendChild(th);
  }
  const body = table.createTBody();
  for (const row of rows) {
    const tr = body.insertRow();
    for (const column of details.columns) {
      const value = row[column.field];
      tr.insertCell().textContent = column.token ? visible(value) : format(value, column.format);
    }
  }
  parts.detail.appendChild(table);
}
