// Renders every <figure class="explorer-figure"> on the page with vega-embed.
//
// A figure's spec.json may carry `usermeta.explorer`:
//   controls: [{name, label, options: [values], labels?: [text], default, fresh?}]  -> <select>s above the chart;
//             a choice on a `fresh` control rebuilds the view, so clicked selections go back to their defaults
//   source:   {url: "runs/{dataset}-{width}.json", datasets: ["boundary", ...], code?: "code"}
//             fetched whenever a control changes; each listed key feeds the named Vega dataset of the
//             same name, and `code` names a string shown as a copyable code block.
// Runs on every page load and instant navigation (document$), and again when the palette changes.
(function () {
  "use strict";
  const specs = new Map();   // figure id -> Promise<spec>
  const choices = new Map(); // figure id -> {control: value}, kept across re-renders
  const live = new Map();    // figure id -> {view, finalize, el}
  window.explorerFigures = live;

  const isDark = () => document.body.getAttribute("data-md-color-scheme") === "slate";

  function loadSpec(id, base) {
    if (!specs.has(id)) {
      specs.set(id, fetch(base + "spec.json").then((r) => {
        if (!r.ok) throw new Error(`figure ${id}: spec.json answered ${r.status}`);
        return r.json();
      }));
    }
    return specs.get(id);
  }

  function fillTemplate(template, state) {
    return template.replace(/\{(\w+)\}/g, (_, name) => encodeURIComponent(state[name]));
  }

  function buildControls(id, meta, box, onChange) {
    const state = choices.get(id) || {};
    for (const c of meta.controls || []) {
      if (!(c.name in state)) state[c.name] = c.default !== undefined ? c.default : c.options[0];
      const label = document.createElement("label");
      label.className = "explorer-control";
      const text = document.createElement("span");
      text.textContent = c.label || c.name;
      const select = document.createElement("select");
      select.name = c.name;
      c.options.forEach((value, i) => {
        const option = document.createElement("option");
        option.value = String(value);
        option.textContent = c.labels ? c.labels[i] : String(value);
        select.appendChild(option);
      });
      select.value = String(state[c.name]);
      select.addEventListener("change", () => {
        const option = c.options.find((v) => String(v) === select.value);
        state[c.name] = option;
        onChange(c);
      });
      label.append(text, select);
      box.appendChild(label);
    }
    choices.set(id, state);
    return state;
  }

  function showCode(box, code) {
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

  async function render(el) {
    const id = el.dataset.figure;
    const base = el.dataset.base;
    const chart = el.querySelector(".explorer-figure__chart");
    el.dataset.rendered = "pending";
    const previous = live.get(id);
    if (previous && previous.el === el) previous.finalize();
    try {
      const spec = await loadSpec(id, base);
      const meta = (spec.usermeta && spec.usermeta.explorer) || {};
      let controls = el.querySelector(".explorer-figure__controls");
      let codeBox = el.querySelector(".explorer-figure__code");
      if (!controls) {
        controls = document.createElement("div");
        controls.className = "explorer-figure__controls";
        el.insertBefore(controls, chart);
        codeBox = document.createElement("div");
        codeBox.className = "explorer-figure__code";
        chart.after(codeBox);
      }
      controls.replaceChildren();
      const embed = async () => {
        const embedded = await vegaEmbed(chart, spec, {
          renderer: "svg",
          theme: isDark() ? "dark" : undefined,
          config: { background: null },
          loader: { baseURL: new URL(base, document.baseURI).href },
          actions: { export: true, source: false, compiled: false, editor: false },
          downloadFileName: id,
        });
        live.set(id, { view: embedded.view, finalize: embedded.finalize, el });
        return embedded;
      };
      let result = await embed();
      if (meta.source) {
        const update = async () => {
          el.dataset.rendered = "pending";
          const url = new URL(fillTemplate(meta.source.url, state), new URL(base, document.baseURI)).href;
          const response = await fetch(url);
          if (!response.ok) throw new Error(`figure ${id}: ${url} answered ${response.status}`);
          const payload = await response.json();
          for (const name of meta.source.datasets) result.view.data(name, payload[name] || []);
          await result.view.resize().runAsync(); // new data may need new axis room

          if (meta.source.code) showCode(codeBox, payload[meta.source.code]);
          el.dataset.source = url;
          showSourceLink(el, url);
          el.dataset.rendered = "true";
        };
        const rebuild = async () => {
          el.dataset.rendered = "pending";
          result.finalize();
          result = await embed();
          await update();
        };
        const state = buildControls(id, meta, controls, (control) => (control.fresh ? rebuild() : update()).catch((e) => fail(el, e)));
        await update();
      } else {
        el.dataset.rendered = "true";
      }
    } catch (error) {
      fail(el, error);
    }
  }

  function showSourceLink(el, url) {
    const meta = el.querySelector(".explorer-figure__meta");
    if (!meta) return;
    let link = meta.querySelector("a.explorer-figure__current");
    if (!link) {
      meta.append(" · ");
      link = document.createElement("a");
      link.className = "explorer-figure__current";
      link.textContent = "data shown (JSON)";
      link.setAttribute("download", "");
      meta.appendChild(link);
    }
    link.href = url;
  }

  function fail(el, error) {
    el.dataset.rendered = "error";
    const box = el.querySelector(".explorer-figure__chart");
    const message = document.createElement("p");
    message.className = "explorer-figure__error";
    message.textContent = `This figure could not be drawn: ${error.message}`;
    box.replaceChildren(message);
    console.error(error);
  }

  function renderAll() {
    document.querySelectorAll("figure.explorer-figure").forEach(render);
  }

  document$.subscribe(renderAll);
  new MutationObserver(renderAll).observe(document.body, { attributes: true, attributeFilter: ["data-md-color-scheme"] });
})();
