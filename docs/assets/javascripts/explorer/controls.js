// One control panel per figure, above the chart.
//
// Two kinds of control, drawn alike:
//   data controls   usermeta.explorer.controls: choosing a value fetches another data file
//   signal controls the spec's own parameters (Vega-Lite `params` with `bind`, or entries of
//                   usermeta.explorer.params): choosing a value sets the Vega signal of that name;
//                   kind "text" (bind input "search" or "text") is a search box whose words set it
// A slider over `options` shows the option's label (e.g. the training step, not its index); one
// marked `play` has a play/pause button that walks through its values.

let uid = 0;
const PLAY_MS = 550;

const cleanLabel = (text) => String(text ?? "").replace(/[\s:]+$/, "");

/** Every control of a figure, in panel order: data controls first, then the spec's parameters. */
export function describeControls(spec, meta) {
  const extra = meta.params || {};
  const found = [];
  for (const c of meta.controls || []) {
    found.push({
      name: c.name, label: c.label || c.name, target: "data", kind: c.kind || "select",
      options: c.options, labels: c.labels, default: c.default !== undefined ? c.default : c.options[0],
      fresh: !!c.fresh, group: c.group || "", patches: c.patches || null,
    });
  }
  const seen = new Set(found.map((c) => c.name));
  forEachParam(spec, (param) => {
    if (seen.has(param.name)) return;
    const bind = param.bind && typeof param.bind === "object" && param.bind.input ? param.bind : null;
    const more = extra[param.name];
    if (!bind && !more) return;
    seen.add(param.name);
    found.push(signalControl(param, bind || {}, more || {}));
  });
  for (const [name, more] of Object.entries(extra)) { // declared in usermeta only (no param in the spec)
    if (!seen.has(name)) console.warn(`figure controls: usermeta.explorer.params.${name} has no parameter in the spec`);
  }
  return found;
}

function signalControl(param, bind, more) {
  const options = more.options || bind.options;
  let kind = more.kind || ({ select: "select", radio: "radio", checkbox: "checkbox", range: "range", search: "text", text: "text" }[bind.input] || "select");
  if (kind === "range" && options) kind = "slider";
  if (!bind.input && options && !more.kind) kind = "slider";
  const control = {
    name: param.name, target: "signal", kind, label: cleanLabel(more.label || bind.name || param.name),
    options, labels: more.labels || bind.labels, default: param.value, play: !!more.play, group: more.group || "",
    format: more.format, min: bind.min ?? more.min, max: bind.max ?? more.max, step: bind.step ?? more.step,
    placeholder: bind.placeholder,
  };
  if (more.by && more.choices) { // options that depend on a data control's choice (see narrow)
    Object.assign(control, { by: more.by, choices: more.choices, all: { options, labels: control.labels, default: param.value } });
  }
  if (kind === "checkbox") control.options = [false, true];
  return control;
}

/** Call `fn(param)` for every parameter anywhere in the spec (Altair nests some under views). */
export function forEachParam(node, fn) {
  if (Array.isArray(node)) node.forEach((v) => forEachParam(v, fn));
  else if (node && typeof node === "object") {
    if (Array.isArray(node.params)) node.params.forEach((p) => p && p.name && !p.select && fn(p));
    for (const [key, value] of Object.entries(node)) if (key !== "params") forEachParam(value, fn);
  }
}

/**
 * The spec as a data control's current choice wants it drawn: `patches` maps a choice to
 * {"/json/pointer": value} (a model with 12 heads needs 12 thumbnail columns, one with 4 needs 4).
 */
export function patched(spec, controls, state) {
  let copy = null;
  for (const c of controls) {
    const edits = c.target === "data" && c.patches && c.patches[String(state[c.name])];
    if (!edits) continue;
    copy = copy || JSON.parse(JSON.stringify(spec));
    for (const [pointer, value] of Object.entries(edits)) {
      const keys = pointer.split("/").slice(1);
      let node = copy;
      for (const key of keys.slice(0, -1)) node = node ? node[key] : undefined;
      if (!node || typeof node !== "object") { console.warn(`figure patch ${pointer}: no such place in the spec`); continue; }
      node[keys[keys.length - 1]] = value;
    }
  }
  return copy || spec;
}

/** The spec without input bindings (the panel draws them) and with parameter values from `state`. */
export function unbound(spec, state) {
  const copy = JSON.parse(JSON.stringify(spec));
  forEachParam(copy, (param) => {
    if (param.bind && typeof param.bind === "object" && param.bind.input) delete param.bind;
    if (param.name in state) param.value = state[param.name];
  });
  return copy;
}

/**
 * Bound a slider that depends on a data control (`by`) to that control's current `choice`:
 * its options, labels and default become the choice's (the whole range when it has none).
 */
export function narrow(control, choice) {
  const picked = (control.choices && control.choices[String(choice)]) || {};
  control.options = picked.options || control.all.options;
  control.labels = picked.labels || control.all.labels;
  control.default = picked.value !== undefined ? picked.value : (control.options ? control.options[0] : control.all.default);
  control.narrowedFor = String(choice);
  return control;
}

/** A value from the URL (a string) as the control's own value, or undefined if it is not one. */
export function parseValue(control, text) {
  if (control.kind === "text") return String(text).slice(0, 200);
  if (control.options) return control.options.find((o) => String(o) === String(text));
  const number = Number(text);
  if (control.kind === "range" && Number.isFinite(number)) return Math.min(control.max, Math.max(control.min, number));
  return undefined;
}

const labelOf = (control, value) => {
  if (control.options && control.labels) {
    const i = control.options.findIndex((o) => String(o) === String(value));
    if (i >= 0) return String(control.labels[i]);
  }
  if (typeof value === "number" && control.format === "percent") return `${Math.round(value * 100)}%`;
  if (typeof value === "number" && !Number.isInteger(value)) return String(Math.round(value * 1000) / 1000);
  return String(value);
};

/**
 * Draw the panel into `box`. `onChange(control, value)` fires on every reader change.
 * Returns {set(name, value), stop()}: set a control programmatically (no onChange), stop playing.
 */
export function buildPanel(box, figureTitle, controls, state, onChange) {
  box.replaceChildren();
  box.setAttribute("role", "group");
  box.setAttribute("aria-label", `Controls: ${figureTitle}`);
  const setters = new Map();
  const widgets = new Map();
  const stoppers = [];
  const groups = new Map();
  for (const control of controls) {
    if (!groups.has(control.group)) {
      const group = document.createElement("div");
      group.className = "explorer-controls__group";
      if (control.group) {
        const title = document.createElement("span");
        title.className = "explorer-controls__title";
        title.textContent = control.group;
        group.appendChild(title);
      }
      groups.set(control.group, group);
      box.appendChild(group);
    }
    const widget = makeWidget(control, state[control.name], (value) => {
      state[control.name] = value;
      onChange(control, value);
    });
    groups.get(control.group).appendChild(widget.el);
    setters.set(control.name, widget.set);
    widgets.set(control.name, widget);
    if (widget.stop) stoppers.push(widget.stop);
  }
  box.hidden = controls.length === 0;
  return {
    set(name, value) { const set = setters.get(name); if (set) set(value); },
    stop() { stoppers.forEach((s) => s()); },
    /** Redraw one control whose options changed (a slider bounded by the chosen file). */
    replace(control, value) {
      const old = widgets.get(control.name);
      if (!old) return;
      if (old.stop) old.stop();
      const widget = makeWidget(control, value, (v) => {
        state[control.name] = v;
        onChange(control, v);
      });
      old.el.replaceWith(widget.el);
      widgets.set(control.name, widget);
      setters.set(control.name, widget.set);
      if (widget.stop) stoppers.push(widget.stop);
    },
  };
}

function makeWidget(control, value, changed) {
  const id = `explorer-control-${++uid}`;
  if (control.kind === "checkbox") return checkbox(control, value, changed, id);
  if (control.kind === "radio") return radio(control, value, changed, id);
  if (control.kind === "slider" || control.kind === "range") return slider(control, value, changed, id);
  if (control.kind === "text") return search(control, value, changed, id);
  return select(control, value, changed, id);
}

function field(control, id, kind) {
  const el = document.createElement("div");
  el.className = `explorer-control explorer-control--${kind}`;
  const label = document.createElement("label");
  label.className = "explorer-control__label";
  label.htmlFor = id;
  label.textContent = control.label;
  el.appendChild(label);
  return { el, label };
}

function select(control, value, changed, id) {
  const { el } = field(control, id, "select");
  const input = document.createElement("select");
  input.id = id;
  input.name = control.name;
  control.options.forEach((option, i) => {
    const item = document.createElement("option");
    item.value = String(option);
    item.textContent = control.labels ? String(control.labels[i]) : String(option);
    input.appendChild(item);
  });
  input.value = String(value);
  input.addEventListener("change", () => changed(control.options.find((o) => String(o) === input.value)));
  el.appendChild(input);
  return { el, set: (v) => { input.value = String(v); } };
}

const SEARCH_MS = 200; // redraw once typing pauses, not at every key

function search(control, value, changed, id) {
  const { el } = field(control, id, "text");
  const input = document.createElement("input");
  input.type = "search";
  input.id = id;
  input.name = control.name;
  input.autocomplete = "off";
  input.spellcheck = false;
  if (control.placeholder) input.placeholder = control.placeholder;
  input.value = String(value ?? "");
  let timer = null;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => changed(input.value), SEARCH_MS);
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter") { clearTimeout(timer); changed(input.value); }
  });
  el.appendChild(input);
  return { el, set: (v) => { input.value = String(v ?? ""); }, stop: () => clearTimeout(timer) };
}

function radio(control, value, changed, id) {
  const el = document.createElement("fieldset");
  el.className = "explorer-control explorer-control--radio";
  const legend = document.createElement("legend");
  legend.className = "explorer-control__label";
  legend.textContent = control.label;
  el.appendChild(legend);
  const inputs = control.options.map((option, i) => {
    const label = document.createElement("label");
    const input = document.createElement("input");
    input.type = "radio";
    input.name = id;
    input.value = String(option);
    input.checked = String(option) === String(value);
    input.addEventListener("change", () => input.checked && changed(option));
    label.append(input, " ", control.labels ? String(control.labels[i]) : String(option));
    el.appendChild(label);
    return input;
  });
  return { el, set: (v) => inputs.forEach((input) => { input.checked = input.value === String(v); }) };
}

function checkbox(control, value, changed, id) {
  const el = document.createElement("div");
  el.className = "explorer-control explorer-control--checkbox";
  const label = document.createElement("label");
  const input = document.createElement("input");
  input.type = "checkbox";
  input.id = id;
  input.name = control.name;
  input.checked = !!value;
  input.addEventListener("change", () => changed(input.checked));
  label.append(input, " ", control.label);
  el.appendChild(label);
  return { el, set: (v) => { input.checked = v === true || v === "true"; } };
}

function slider(control, value, changed, id) {
  const { el, label } = field(control, id, "slider");
  const readout = document.createElement("output");
  readout.className = "explorer-control__value";
  readout.htmlFor = id;
  label.append(" ", readout);
  const row = document.createElement("div");
  row.className = "explorer-control__row";
  const input = document.createElement("input");
  input.type = "range";
  input.id = id;
  input.name = control.name;
  const discrete = Array.isArray(control.options);
  if (discrete) {
    input.min = "0";
    input.max = String(control.options.length - 1);
    input.step = "1";
  } else {
    input.min = String(control.min);
    input.max = String(control.max);
    input.step = String(control.step ?? "any");
  }
  const toValue = () => (discrete ? control.options[Number(input.value)] : Number(input.value));
  const show = (v) => {
    if (discrete) {
      const i = control.options.findIndex((o) => String(o) === String(v));
      input.value = String(Math.max(0, i));
    } else {
      input.value = String(v);
    }
    readout.textContent = labelOf(control, v);
    input.setAttribute("aria-valuetext", readout.textContent);
  };
  show(value);
  input.addEventListener("input", () => {
    const v = toValue();
    show(v);
    changed(v);
  });
  let timer = null;
  let button = null;
  const stop = () => {
    if (timer) clearInterval(timer);
    timer = null;
    if (button) { button.textContent = "▶"; button.setAttribute("aria-label", `Play: ${control.label}`); button.setAttribute("aria-pressed", "false"); }
  };
  if (control.play && discrete) {
    button = document.createElement("button");
    button.type = "button";
    button.className = "explorer-play";
    stop();
    button.addEventListener("click", () => {
      if (timer) return stop();
      const last = control.options.length - 1;
      if (Number(input.value) >= last) input.value = "0";
      const tick = () => {
        const next = Number(input.value) + 1;
        input.value = String(Math.min(next, last));
        const v = toValue();
        show(v);
        changed(v);
        if (Number(input.value) >= last) stop();
      };
      button.textContent = "❚❚";
      button.setAttribute("aria-label", `Pause: ${control.label}`);
      button.setAttribute("aria-pressed", "true");
      tick();
      timer = setInterval(tick, PLAY_MS);
    });
    input.addEventListener("pointerdown", stop);
    row.appendChild(button);
  }
  row.appendChild(input);
  el.appendChild(row);
  return { el, set: show, stop };
}
