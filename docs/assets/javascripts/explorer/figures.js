// Draws every <figure class="explorer-figure"> of a page with vega-embed.
//
// A figure's spec.json may carry `usermeta.explorer` (see the Conventions page):
//   controls  data controls: [{name, label, options, labels?, default, fresh?, group?, patches?}]; a
//             choice fetches `source.url` filled with the current values; `patches` ({choice:
//             {"/json/pointer": value}}) redraws a `fresh` control's spec to suit that choice
//   source    {url: "runs/{dataset}-{width}.json", datasets: ["net", ...], code?: "code"}: each
//             listed key of the fetched file feeds the Vega dataset of that name
//   params    {<param>: {label?, options?, labels?, play?, group?, format?}}: how the panel draws a
//             spec parameter (a slider over training steps with their labels and a play button)
//   text      a text view under the chart (see textview.js)
//   renderer  "svg" (default) or "canvas" for figures with thousands of marks
//   fixedPositions  true: marks keep the position they entered with (a slider that only recolours
//             thousands of cells then re-encodes their colour alone; see layout.js)
// Figures draw when they come near the viewport, one at a time, so a page stays responsive; the
// Vega library itself loads with the first figure. Control values live in the URL (state.js),
// colours follow the palette (theme.js), and wide figures wrap instead of shrinking (layout.js).

import { buildPanel, describeControls, narrow, parseValue, patched, unbound } from "./controls.js";
import { drawnWidth, narrowLegends, positionsOnEnter, refit, wrappable } from "./layout.js";
import { linkState, readState, writeState } from "./state.js";
import { fillRoom, isDark, resolveTokens, vegaConfig } from "./theme.js";
import { updateTextView } from "./textview.js";

const VEGA_URL = new URL("../../vendor/vega-bundle.js", import.meta.url).href;
const REACH = ["pointerenter", "focusin", "touchstart", "click"];
const NARROW = 600; // px of room below which legends move under their views
const MAX_PASSES = 4;
const specs = new Map(); // figure id -> Promise<spec>
const compiledSpecs = new Map(); // url -> Promise<{key, vega} | null>
const payloads = new Map(); // url -> Promise<payload>
const live = new Map(); // figure id -> record (see attach)
let generation = 0;
let observer = null;
let queue = Promise.resolve();

window.explorerFigures = live;
window.explorer = { figures: live, renderAll, whenIdle: () => queue, viewKey: (spec) => viewKey(spec) }; // viewKey: for the tests

const vegaReady = (() => {
  let promise = null;
  return () => {
    if (window.vegaEmbed) return Promise.resolve();
    if (!promise) {
      promise = new Promise((resolve, reject) => {
        const script = document.createElement("script");
        script.src = VEGA_URL;
        script.onload = resolve;
        script.onerror = () => reject(new Error("the Vega library (assets/vendor/vega-bundle.js) did not load"));
        document.head.appendChild(script);
      });
    }
    return promise;
  };
})();

function fetchJSON(url, what) {
  return fetch(url).then((r) => {
    if (!r.ok) throw new Error(`${what}: ${url} answered ${r.status}`);
    return r.json();
  });
}

function loadSpec(id, base) {
  const url = new URL("spec.json", new URL(base, document.baseURI)).href; // one figure may have a spec per model
  if (!specs.has(url)) specs.set(url, fetchJSON(url, `figure ${id}`));
  return specs.get(url);
}

/** The build's compiled first view (explorer/site/compiled.py), or null: only figures the page marks
 * `data-compiled` have one, so no other figure asks for a file that is not there. */
function loadCompiled(record) {
  if (record.el.dataset.compiled === undefined || record.base !== record.compiledBase) return Promise.resolve(null);
  const url = new URL("spec.vg.json", new URL(record.base, document.baseURI)).href;
  if (!compiledSpecs.has(url)) compiledSpecs.set(url, fetch(url).then((r) => (r.ok ? r.json() : null)).catch(() => null));
  return compiledSpecs.get(url);
}

/** The string explorer/site/compiled.py `canonical` writes: JSON with sorted keys (undefined left out). */
function canonical(node) {
  if (node === null || typeof node !== "object") return JSON.stringify(node) ?? "null";
  if (Array.isArray(node)) return `[${node.map((v) => (v === undefined ? "null" : canonical(v))).join(",")}]`;
  return `{${Object.keys(node).sort().filter((k) => node[k] !== undefined && typeof node[k] !== "function")
    .map((k) => `${JSON.stringify(k)}:${canonical(node[k])}`).join(",")}}`;
}

/** FNV-1a of the canonical string, twice (64 bits), as compiled.py `view_key` computes it. */
function viewKey(spec) {
  const text = canonical(spec);
  let a = 0x811c9dc5, b = 0x9747b28c;
  for (let i = 0; i < text.length; i += 1) {
    const u = text.charCodeAt(i);
    a = Math.imul(a ^ u, 0x01000193) >>> 0;
    b = Math.imul(b ^ u, 0x01000193) >>> 0;
  }
  return a.toString(16).padStart(8, "0") + b.toString(16).padStart(8, "0");
}

function loadPayload(url, id) {
  if (!payloads.has(url)) {
    const p = fetchJSON(url, `figure ${id}`);
    p.catch(() => payloads.delete(url));
    payloads.set(url, p);
  }
  return payloads.get(url);
}

const nextFrame = () => new Promise((resolve) => setTimeout(resolve, 0));

// ---------------------------------------------------------------------------------------------

function attach(el) {
  const id = el.dataset.figure;
  const record = {
    id, el, base: el.dataset.base, spec: null, meta: {}, controls: [], state: {}, defaults: {},
    view: null, finalize: null, layout: null, room: 0, panel: null, drawn: null, generation, payload: null, textview: null,
    chart: el.querySelector(".explorer-figure__chart"), compiledBase: el.dataset.base, compiledHit: false,
  };
  live.set(id, record);
  el.dataset.rendered = "lazy";
  return record;
}

function schedule(record) {
  if (record.drawn) return record.drawn;
  // Fetch now, draw in turn: the library and every scheduled figure's spec load while earlier figures draw.
  vegaReady().catch(() => {});
  loadSpec(record.id, record.base).catch(() => {});
  loadCompiled(record);
  record.drawn = new Promise((resolve) => {
    queue = queue.then(async () => {
      if (record.generation === generation) await firstDraw(record);
      resolve();
      await nextFrame(); // let the page breathe between figures
    });
  });
  return record.drawn;
}

/** Draw every figure of the page now (tests, printing); resolves when all are drawn. */
function renderAll() {
  return Promise.all([...live.values()].map(schedule));
}

async function firstDraw(record) {
  const { el, id } = record;
  el.dataset.rendered = "pending";
  try {
    const [spec] = await Promise.all([loadSpec(id, record.base), vegaReady()]);
    record.spec = spec;
    record.meta = (spec.usermeta && spec.usermeta.explorer) || {};
    record.controls = describeControls(spec, record.meta);
    const fromUrl = readState(id);
    for (const c of record.controls) {
      if (c.by) narrow(c, record.state[c.by]); // data controls come first: their state is known
      record.defaults[c.name] = c.default;
      const asked = c.name in fromUrl ? parseValue(c, fromUrl[c.name]) : undefined;
      if (c.name in fromUrl && asked === undefined) console.warn(`figure ${id}: ignoring ${c.name}=${fromUrl[c.name]} from the address`);
      record.state[c.name] = asked !== undefined ? asked : c.default;
    }
    let box = el.querySelector(".explorer-figure__controls");
    if (!box) {
      box = document.createElement("div");
      box.className = "explorer-figure__controls";
      el.insertBefore(box, record.chart);
    }
    record.panel = buildPanel(box, el.querySelector("figcaption strong")?.textContent || id, record.controls, record.state,
      (control, value) => change(record, control, value).catch((e) => fail(record, e)));
    addModelSwitch(record, box);
    addExportLinks(record);
    await draw(record);
    watchSize(record);
  } catch (error) {
    fail(record, error);
  }
}

// ---------------------------------------------------------------------------------------------
// The model switch: a figure recomputed on other models (`make figures MODEL=name`, published under
// figures/models/<name>/) offers them; the page's prose describes the published one.

function modelChoices(record) {
  try { return JSON.parse(record.el.dataset.models || "[]"); } catch (e) { return []; }
}

function addModelSwitch(record, box) {
  const choices = modelChoices(record);
  if (choices.length < 2) return;
  const current = choices.findIndex((c) => c.base === record.base);
  const wrap = document.createElement("div");
  wrap.className = "explorer-control explorer-control--model";
  const label = document.createElement("label");
  label.className = "explorer-control__label";
  label.textContent = "Computed on";
  const select = document.createElement("select");
  select.id = `explorer-model-${record.id}`;
  label.htmlFor = select.id;
  choices.forEach((c, i) => {
    const option = document.createElement("option");
    option.value = String(i);
    option.textContent = c.label; // text, never HTML
    option.selected = i === current;
    select.appendChild(option);
  });
  select.addEventListener("change", () => switchModel(record, choices[Number(select.value)]).catch((e) => fail(record, e)));
  wrap.append(label, select);
  if (current > 0) {
    const note = document.createElement("p");
    note.className = "explorer-figure__model-note";
    const name = choices[current].label;
    note.textContent = `Recomputed on ${name}. Boxed numbers in the text are ${name}'s own; faded ones describe the published models, so they may not hold here.`;
    wrap.appendChild(note);
  }
  box.prepend(wrap);
}

/** Draw the figure again from another model's files: its own spec, controls and data. */
async function switchModel(record, choice) {
  if (record.finalize) record.finalize();
  record.finalize = null;
  record.view = null;
  record.base = choice.base;
  record.el.dataset.base = choice.base;
  Object.assign(record, { spec: null, meta: {}, controls: [], state: {}, defaults: {}, layout: null, room: 0, payload: null });
  const model = record.el.querySelector(".explorer-figure__model");
  if (model) model.textContent = choice.model;
  const box = record.el.querySelector(".explorer-figure__controls");
  if (box) box.replaceChildren();
  for (const stale of record.el.querySelectorAll(".explorer-figure__code")) stale.remove();
  switchClaims(record, choice, modelChoices(record)[0]);
  await firstDraw(record);
}

/** The page's numbers from this figure follow the switch: a model-independent claim (data-alt,
 * written by the shortcodes) shows the chosen model's value; any other is marked as the published
 * models' own. Text only, never HTML. */
function switchClaims(record, choice, published) {
  const back = !published || choice.base === published.base;
  for (const span of document.querySelectorAll(".explorer-claim[data-claim]")) {
    if (span.dataset.claim.split(":")[0] !== record.id) continue;
    if (span.dataset.published === undefined) span.dataset.published = span.textContent;
    span.classList.remove("explorer-claim--switched", "explorer-claim--published-only");
    span.removeAttribute("title");
    if (back) { span.textContent = span.dataset.published; continue; }
    let alt = {};
    try { alt = JSON.parse(span.dataset.alt || "{}"); } catch (e) { alt = {}; }
    if (Object.prototype.hasOwnProperty.call(alt, choice.label)) {
      span.textContent = String(alt[choice.label]);
      span.classList.add("explorer-claim--switched");
      span.title = `measured on ${choice.label}`;
    } else {
      span.textContent = span.dataset.published;
      span.classList.add("explorer-claim--published-only");
      span.title = `measured on the published models; ${choice.label} has no such number`;
    }
  }
}

function sourceUrl(record) {
  const template = record.meta.source.url;
  const filled = template.replace(/\{(\w+)\}/g, (_, name) => encodeURIComponent(record.state[name]));
  return new URL(filled, new URL(record.base, document.baseURI)).href;
}

/** The lazily loaded file for the current control values (cached), or null without a source. */
async function currentPayload(record) {
  if (!record.meta.source) return null;
  const url = sourceUrl(record);
  const payload = await loadPayload(url, record.id);
  return { url, payload };
}

function showPayloadExtras(record, loaded) {
  record.payload = loaded ? loaded.payload : null; // the text view reads datasets no mark uses from here
  if (!loaded) return;
  if (record.meta.source.code) showCode(record, loaded.payload[record.meta.source.code]);
  showSourceLink(record, loaded.url);
}

/** Feed a newly chosen file into the live view (its datasets keep their names). */
async function feed(record) {
  const loaded = await currentPayload(record);
  if (!loaded) return;
  for (const name of record.meta.source.datasets) record.view.data(name, loaded.payload[name] || []);
  await record.view.runAsync();
  showPayloadExtras(record, loaded);
}

function signalState(record) {
  const out = {};
  for (const c of record.controls) if (c.target === "signal") out[c.name] = record.state[c.name];
  return out;
}

/** Draw (or redraw) the figure at the room it has now, wrapping it until it fits. */
async function draw(record, { keepLayout = false } = {}) {
  const { el, chart } = record;
  el.dataset.rendered = "pending";
  const room = Math.floor(chart.clientWidth || el.clientWidth || 600);
  const narrow = room < NARROW;
  let work;
  if (keepLayout && record.layout && record.room === room) {
    work = unbound(record.layout, signalState(record));
  } else {
    work = wrappable(unbound(patched(record.spec, record.controls, record.state), signalState(record)));
    if (narrow) narrowLegends(work);
  }
  const config = vegaConfig({ narrow, width: room });
  const loaded = await currentPayload(record);
  const datasets = {};
  if (loaded) for (const name of record.meta.source.datasets) datasets[name] = loaded.payload[name] || [];
  const started = performance.now();
  const compiled = ((await loadCompiled(record)) || {})[narrow ? "narrow" : "wide"];
  let ahead = !!compiled && compiled.key === viewKey(work) && window.explorerCompiled !== false; // tests turn it off
  record.compiledHit = ahead;
  let passes = 0;
  for (let pass = 0; pass < MAX_PASSES; pass += 1) {
    passes += 1;
    const embedded = ahead ? await embedCompiled(record, compiled.vega, room, datasets) : await embed(record, work, config, datasets);
    ahead = false;
    if (drawnWidth(embedded.view) <= room + 1) break;
    const next = refit(work, embedded.view, room);
    if (!next) break;
    work = next;
  }
  record.timing = { ms: Math.round(performance.now() - started), passes }; // read by `make bench`
  record.layout = work;
  record.room = room;
  showPayloadExtras(record, loaded);
  updateTextView(record);
  el.dataset.rendered = "true";
}

async function embed(record, spec, config, datasets) {
  if (record.finalize) record.finalize();
  record.finalize = null;
  for (const picture of record.chart.querySelectorAll(".explorer-preview")) picture.remove();
  const resolved = resolveTokens(spec);
  delete resolved.usermeta;
  if (Object.keys(datasets).length) resolved.datasets = { ...(resolved.datasets || {}), ...datasets }; // drawn once, with its data
  const result = await window.vegaEmbed(record.chart, resolved, {
    renderer: record.meta.renderer || "svg",
    config: resolveTokens(config),
    actions: false,
    tooltip: { theme: isDark() ? "dark" : "light" },
    loader: { baseURL: new URL(record.base, document.baseURI).href },
    downloadFileName: record.id,
    ...(record.meta.fixedPositions ? { patch: positionsOnEnter } : {}),
  });
  record.view = result.view;
  record.finalize = result.finalize;
  return result;
}

/** Data entries the build wrote as {"$ref": "/json/pointer"} take their values from the published spec. */
function fromRefs(vega, spec) {
  const at = (pointer) => pointer.split("/").slice(1).map((k) => k.replace(/~1/g, "/").replace(/~0/g, "~"))
    .reduce((node, key) => (node == null ? undefined : node[key]), spec);
  const visit = (node) => {
    for (const entry of node.data || []) {
      if (entry.values && typeof entry.values === "object" && !Array.isArray(entry.values) && "$ref" in entry.values) {
        entry.values = at(entry.values.$ref) || [];
      }
    }
    for (const mark of node.marks || []) if (mark.type === "group") visit(mark);
  };
  visit(vega);
  return vega;
}

/** Draw the build's compiled Vega (the first view): fill in the room and the palette, feed the data. */
async function embedCompiled(record, vega, room, datasets) {
  if (record.finalize) record.finalize();
  record.finalize = null;
  for (const picture of record.chart.querySelectorAll(".explorer-preview")) picture.remove();
  const resolved = resolveTokens(fromRefs(fillRoom(vega, room), record.spec)); // resolveTokens copies: the spec stays as fetched
  if (Object.keys(datasets).length) {
    for (const entry of resolved.data || []) if (entry.name in datasets) entry.values = datasets[entry.name];
  }
  const result = await window.vegaEmbed(record.chart, resolved, {
    mode: "vega",
    renderer: record.meta.renderer || "svg",
    actions: false,
    tooltip: { theme: isDark() ? "dark" : "light" },
    loader: { baseURL: new URL(record.base, document.baseURI).href },
    downloadFileName: record.id,
    ...(record.meta.fixedPositions ? { patch: positionsOnEnter } : {}),
  });
  record.view = result.view;
  record.finalize = result.finalize;
  return result;
}

/** Sliders bounded by a data control follow its new choice: new range, value reset. */
function retarget(record, control, value) {
  const moved = [];
  for (const d of record.controls) {
    if (d.by !== control.name || d.narrowedFor === String(value)) continue;
    narrow(d, value);
    record.state[d.name] = d.default;
    record.defaults[d.name] = d.default;
    if (record.panel) record.panel.replace(d, d.default);
    moved.push(d);
  }
  return moved;
}

async function change(record, control, value, { fromLink = false } = {}) {
  record.state[control.name] = value;
  const moved = control.target === "data" ? retarget(record, control, value) : [];
  writeState(record.id, record.state, record.defaults);
  if (fromLink) record.panel.set(control.name, value);
  if (!record.view) return;
  if (control.target === "data" && control.fresh) return draw(record);
  record.el.dataset.rendered = "pending";
  if (control.target === "data") {
    for (const d of moved) record.view.signal(d.name, record.state[d.name]);
    await feed(record);
  } else await record.view.signal(control.name, value).runAsync();
  if (drawnWidth(record.view) > record.room + 1) return draw(record);
  updateTextView(record);
  record.el.dataset.rendered = "true";
}

// ---------------------------------------------------------------------------------------------

function watchSize(record) {
  if (!window.ResizeObserver || record.watching) return; // once per figure, whichever model it shows
  record.watching = true;
  let timer = null;
  new ResizeObserver(() => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      const room = Math.floor(record.chart.clientWidth);
      if (record.view && Math.abs(room - record.room) > 24) draw(record).catch((e) => fail(record, e));
    }, 150);
  }).observe(record.el);
}

function addExportLinks(record) {
  const meta = record.el.querySelector(".explorer-figure__meta");
  if (!meta || meta.querySelector(".explorer-export")) return;
  const span = document.createElement("span");
  span.className = "explorer-export";
  span.append(" · save as ");
  ["png", "svg"].forEach((format, i) => {
    if (i) span.append(" or ");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "explorer-export__button";
    button.textContent = format.toUpperCase();
    button.setAttribute("aria-label", `Save this figure as ${format.toUpperCase()}`);
    button.addEventListener("click", async () => {
      if (!record.view) return;
      const url = await record.view.toImageURL(format, format === "png" ? 2 : 1);
      const a = document.createElement("a");
      a.href = url;
      a.download = `${record.id}.${format}`;
      a.click();
    });
    span.appendChild(button);
  });
  const csv = document.createElement("button");
  csv.type = "button";
  csv.className = "explorer-export__button";
  csv.textContent = "CSV";
  csv.setAttribute("aria-label", "Download the data of this figure as CSV");
  csv.addEventListener("click", async () => {
    const text = tablesToCsv(await figureTables(record));
    const a = document.createElement("a");
    a.href = URL.createObjectURL(new Blob([text], { type: "text/csv" }));
    a.download = `${record.id}.csv`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
  });
  span.append(" · data as ", csv);
  meta.appendChild(span);
}

/** [name, rows] for every table the figure draws now: the spec's data files, then the lazily
 * loaded file of the current control values. */
async function figureTables(record) {
  const urls = new Set();
  const visit = (node) => {
    if (Array.isArray(node)) node.forEach(visit);
    else if (node && typeof node === "object") {
      const data = node.data;
      if (data && typeof data === "object" && typeof data.url === "string") urls.add(data.url); // a view's or a lookup's file
      Object.entries(node).forEach(([key, value]) => { if (key !== "usermeta") visit(value); });
    }
  };
  visit(record.spec);
  const tables = [];
  for (const url of urls) {
    const rows = await (await fetch(new URL(url, new URL(record.base, document.baseURI)))).json();
    if (Array.isArray(rows)) tables.push([url.split("/").pop().replace(/\.json$/, ""), rows]);
  }
  const payload = record.payload;
  if (payload && record.meta.source) {
    for (const name of record.meta.source.datasets) if (Array.isArray(payload[name])) tables.push([name, payload[name]]);
  }
  return tables;
}

function csvCell(value) {
  if (value === null || value === undefined) return "";
  let text = typeof value === "object" ? JSON.stringify(value) : String(value);
  if (typeof value === "string" && /^[=+\-@\t\r]/.test(text)) text = `'${text}`; // never a formula in a spreadsheet
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** One CSV: a column per field of any row, and a first column naming the table when there are several. */
export function tablesToCsv(tables) {
  const fields = [];
  for (const [, rows] of tables) for (const row of rows) for (const key of Object.keys(row || {})) if (!fields.includes(key)) fields.push(key);
  const several = tables.length > 1;
  const lines = [(several ? ["table", ...fields] : fields).map(csvCell).join(",")];
  for (const [name, rows] of tables) {
    for (const row of rows) {
      const cells = fields.map((f) => csvCell(row ? row[f] : ""));
      lines.push((several ? [csvCell(name), ...cells] : cells).join(","));
    }
  }
  return lines.join("\r\n") + "\r\n";
}

function showCode(record, code) {
  let box = record.el.querySelector(".explorer-figure__code");
  if (!box) {
    box = document.createElement("div");
    box.className = "explorer-figure__code";
    record.chart.after(box);
  }
  box.replaceChildren();
  if (typeof code !== "string") return;
  const pre = document.createElement("pre");
  const el = document.createElement("code");
  el.textContent = code; // text, never HTML
  pre.appendChild(el);
  const button = document.createElement("button");
  button.type = "button";
  button.className = "md-button explorer-copy";
  button.textContent = "Copy as PyTorch";
  button.addEventListener("click", async () => {
    try { await navigator.clipboard.writeText(code); button.textContent = "Copied"; }
    catch (e) { window.getSelection().selectAllChildren(el); button.textContent = "Selected: press Ctrl+C"; }
  });
  box.append(button, pre);
}

function showSourceLink(record, url) {
  record.el.dataset.source = url;
  const meta = record.el.querySelector(".explorer-figure__meta");
  if (!meta) return;
  let link = meta.querySelector("a.explorer-figure__current");
  if (!link) {
    link = document.createElement("a");
    link.className = "explorer-figure__current";
    link.textContent = "data shown (JSON)";
    link.setAttribute("download", "");
    const exporter = meta.querySelector(".explorer-export");
    meta.insertBefore(document.createTextNode(" · "), exporter);
    meta.insertBefore(link, exporter);
  }
  link.href = url;
}

function fail(record, error) {
  record.el.dataset.rendered = "error";
  const message = document.createElement("p");
  message.className = "explorer-figure__error";
  message.textContent = `This figure could not be drawn: ${error.message}`;
  record.chart.replaceChildren(message);
  console.error(error);
}

// ---------------------------------------------------------------------------------------------
// Links in the prose that set a figure to a state: <a class="explorer-try" data-figure data-state>

async function followLink(link) {
  const asked = linkState(link);
  const record = asked && live.get(asked.figure);
  if (!record) return false;
  record.el.scrollIntoView({ behavior: "smooth", block: "start" });
  await schedule(record);
  if (record.el.dataset.rendered === "error") return true;
  record.panel.stop();
  const controls = new Map(record.controls.map((c) => [c.name, c]));
  const fresh = [];
  const first = (name) => (controls.get(name) && controls.get(name).target === "data" ? 0 : 1); // data choices bound sliders
  const asks = Object.entries(asked.values).sort(([a], [b]) => first(a) - first(b));
  for (const [name, text] of asks) {
    const control = controls.get(name);
    const value = control && parseValue(control, text);
    if (value === undefined) { console.warn(`try link: ${asked.figure} has no ${name}=${text}`); continue; }
    if (control.target === "data" && control.fresh) {
      record.state[name] = value;
      record.panel.set(name, value);
      retarget(record, control, value);
      fresh.push(control);
      continue;
    }
    await change(record, control, value, { fromLink: true });
  }
  if (fresh.length) await change(record, fresh[0], record.state[fresh[0].name], { fromLink: true });
  return true;
}

document.addEventListener("click", (event) => {
  const link = event.target.closest && event.target.closest("a.explorer-try");
  if (!link || event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) return;
  event.preventDefault();
  event.stopImmediatePropagation(); // keep Material's instant navigation out of it
  followLink(link).catch((e) => console.error(e));
}, true);

// ---------------------------------------------------------------------------------------------

function setUp() {
  generation += 1;
  for (const record of live.values()) if (record.finalize) record.finalize();
  live.clear();
  if (observer) observer.disconnect();
  queue = Promise.resolve();
  const figures = [...document.querySelectorAll("figure.explorer-figure")];
  const records = figures.map(attach);
  if (!("IntersectionObserver" in window)) { renderAll(); return; }
  // At load only what is on screen draws (a figure just below the fold would otherwise block the
  // first seconds of a phone's main thread); once the reader scrolls, figures draw 200 px before
  // they arrive.
  const waiting = new Set(records.filter((r) => !r.el.hasAttribute("data-preview")).map((r) => r.el));
  const watch = (margin) => {
    const next = new IntersectionObserver((entries, self) => {
      for (const entry of entries) {
        if (!entry.isIntersecting) continue;
        self.unobserve(entry.target);
        waiting.delete(entry.target);
        const record = live.get(entry.target.dataset.figure);
        if (record) schedule(record);
      }
    }, { rootMargin: margin });
    for (const el of waiting) next.observe(el);
    return next;
  };
  observer = watch("0px 0px");
  const mine = generation;
  const widen = () => {
    window.removeEventListener("scroll", widen);
    if (mine !== generation || !waiting.size) return;
    observer.disconnect();
    observer = watch("200px 0px");
  };
  window.addEventListener("scroll", widen, { passive: true });
  for (const r of records) if (r.el.hasAttribute("data-preview")) wakeOnReach(r);
}

/** A figure shown as its build-time picture comes alive when the reader reaches for it. */
function wakeOnReach(record) {
  const wake = () => {
    for (const type of REACH) record.el.removeEventListener(type, wake);
    schedule(record);
  };
  for (const type of REACH) record.el.addEventListener(type, wake, { passive: true });
}

function repaint() { // the palette changed: same layout, new colours
  for (const record of live.values()) {
    if (!record.view) continue;
    queue = queue.then(() => draw(record, { keepLayout: true }).catch((e) => fail(record, e)));
  }
}

document$.subscribe(setUp);
new MutationObserver(repaint).observe(document.body, { attributes: true, attributeFilter: ["data-md-color-scheme"] });
