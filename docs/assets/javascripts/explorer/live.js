// The flagship in the reader's browser: type any text, see each head's attention on it and the
// model's next-byte predictions, computed here from the stored weights (no server, no request
// outside the site).
//
// A page asks for it with <div class="explorer-live" data-src="…/live/weights.json"></div>. The
// weights are the flagship's (PlainTransformer names, explorer/models/reference.py), quantized to
// int8 per tensor by build_figures/flagship.py; the forward pass below is that model's, and
// tests/test_browser_live.py checks its logits and patterns against torch on the same weights.
// Everything typed is shown with textContent, never as HTML.

import { visible } from "./textview.js";

const loaded = new Map();

function decode(tensor) {
  const raw = atob(tensor.q);
  const values = new Float32Array(raw.length);
  for (let i = 0; i < raw.length; i++) values[i] = ((raw.charCodeAt(i) << 24) >> 24) * tensor.scale; // int8 -> float
  return values;
}

export async function loadWeights(url) {
  if (!loaded.has(url)) {
    loaded.set(url, fetch(url).then((r) => {
      if (!r.ok) throw new Error(`live model: ${url} answered ${r.status}`);
      return r.json();
    }).then((payload) => {
      const weights = { arch: payload.arch };
      for (const [name, tensor] of Object.entries(payload.tensors)) weights[name] = decode(tensor);
      return weights;
    }));
  }
  return loaded.get(url);
}

function layerNorm(x, n, d, w, b) {
  const out = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    let mean = 0, variance = 0;
    for (let j = 0; j < d; j++) mean += x[i * d + j];
    mean /= d;
    for (let j = 0; j < d; j++) { const c = x[i * d + j] - mean; variance += c * c; }
    const inv = 1 / Math.sqrt(variance / d + 1e-5);
    for (let j = 0; j < d; j++) out[i * d + j] = (x[i * d + j] - mean) * inv * w[j] + b[j];
  }
  return out;
}

// x (n, din) times W^T, W (dout, din) as nn.Linear stores it, plus bias b (dout) when given
function linear(x, n, din, W, dout, b) {
  const out = new Float32Array(n * dout);
  for (let i = 0; i < n; i++) {
    for (let o = 0; o < dout; o++) {
      let s = b ? b[o] : 0;
      const row = o * din, at = i * din;
      for (let j = 0; j < din; j++) s += x[at + j] * W[row + j];
      out[i * dout + o] = s;
    }
  }
  return out;
}

/** The flagship's forward pass on `bytes`: {logits (n, 256), patterns[layer][head] (n, n)}. */
export function forward(W, bytes) {
  const { d_model: d, n_heads: H, n_layers: L, d_vocab: V } = W.arch;
  const n = bytes.length, dh = d / H;
  let x = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) x[i * d + j] = W["embed.weight"][bytes[i] * d + j] + W["pos.weight"][i * d + j];
  }
  const patterns = [];
  for (let l = 0; l < L; l++) {
    const p = `blocks.${l}.`;
    const h = layerNorm(x, n, d, W[p + "ln1.weight"], W[p + "ln1.bias"]);
    const qkv = linear(h, n, d, W[p + "qkv.weight"], 3 * d, W[p + "qkv.bias"]); // (n, 3d): q | k | v
    const z = new Float32Array(n * d);
    const layer = [];
    for (let head = 0; head < H; head++) {
      const pattern = new Float32Array(n * n);
      for (let i = 0; i < n; i++) {
        let max = -Infinity;
        for (let j = 0; j <= i; j++) {
          let s = 0;
          for (let c = 0; c < dh; c++) s += qkv[i * 3 * d + head * dh + c] * qkv[j * 3 * d + d + head * dh + c];
          s /= Math.sqrt(dh);
          pattern[i * n + j] = s;
          if (s > max) max = s;
        }
        let total = 0;
        for (let j = 0; j <= i; j++) { const e = Math.exp(pattern[i * n + j] - max); pattern[i * n + j] = e; total += e; }
        for (let j = 0; j <= i; j++) pattern[i * n + j] /= total;
        for (let c = 0; c < dh; c++) {
          let s = 0;
          for (let j = 0; j <= i; j++) s += pattern[i * n + j] * qkv[j * 3 * d + 2 * d + head * dh + c];
          z[i * d + head * dh + c] = s;
        }
      }
      layer.push(pattern);
    }
    patterns.push(layer);
    const out = linear(z, n, d, W[p + "out.weight"], d, W[p + "out.bias"]);
    for (let k = 0; k < n * d; k++) x[k] += out[k];
  }
  const final = layerNorm(x, n, d, W["ln_final.weight"], W["ln_final.bias"]);
  return { logits: linear(final, n, d, W["unembed.weight"], V, null), patterns };
}

/** A byte as the page shows it: printable ASCII itself, whitespace made visible, anything else as hex. */
export function byteText(b) {
  if (b === 32 || b === 10 || b === 9 || b === 13) return visible(String.fromCharCode(b));
  if (b > 32 && b < 127) return String.fromCharCode(b);
  return `\\x${b.toString(16).padStart(2, "0")}`;
}

function softmax(logits, at, V) {
  let max = -Infinity;
  for (let v = 0; v < V; v++) max = Math.max(max, logits[at * V + v]);
  const p = new Float32Array(V);
  let total = 0;
  for (let v = 0; v < V; v++) { p[v] = Math.exp(logits[at * V + v] - max); total += p[v]; }
  for (let v = 0; v < V; v++) p[v] /= total;
  return p;
}

const DEFAULT_TEXT = "def total(items):\n    return sum(items)\n\n\ndef total(items):\n    return sum(items)\n";

function build(root) {
  const src = root.dataset.src;
  root.replaceChildren();
  const form = document.createElement("div");
  form.className = "explorer-live__controls";
  const label = document.createElement("label");
  label.textContent = "Your text (up to 256 bytes) ";
  const input = document.createElement("textarea");
  input.rows = 5;
  input.spellcheck = false;
  input.value = root.dataset.text || DEFAULT_TEXT;
  label.append(input);
  const headLabel = document.createElement("label");
  headLabel.textContent = "Head ";
  const head = document.createElement("select");
  headLabel.append(head);
  form.append(label, headLabel);
  const status = document.createElement("p");
  status.className = "explorer-live__status";
  status.setAttribute("aria-live", "polite");
  const tokens = document.createElement("div");
  tokens.className = "explorer-live__tokens";
  tokens.setAttribute("role", "listbox");
  tokens.setAttribute("aria-label", "Your text, one byte per item: point at or focus a byte");
  tokens.tabIndex = 0;
  const details = document.createElement("div");
  details.className = "explorer-live__details";
  details.setAttribute("aria-live", "polite");
  root.append(form, status, tokens, details);
  status.textContent = "Loading the model…";

  let W = null, result = null, bytes = [], chosen = 0;
  const state = { root };
  root.explorerLive = state;

  function paint() {
    if (!result) return;
    const [l, h] = head.value.split(",").map(Number);
    const n = bytes.length, pattern = result.patterns[l][h];
    tokens.querySelectorAll(".explorer-live__token").forEach((span, j) => {
      const w = j <= chosen ? pattern[chosen * n + j] : null;
      span.classList.toggle("is-masked", w === null);
      span.classList.toggle("is-chosen", j === chosen);
      span.style.setProperty("--w", w === null ? "0" : String(Math.round(w * 100)));
      span.title = w === null ? "after the chosen byte (masked)" : `attention ${(w * 100).toFixed(1)}%`;
    });
    const probs = softmax(result.logits, chosen, W.arch.d_vocab);
    const top = [...probs.keys()].sort((a, b) => probs[b] - probs[a]).slice(0, 5);
    details.replaceChildren();
    const title = document.createElement("p");
    title.textContent = `Head L${l}H${h} from byte ${chosen} (“${byteText(bytes[chosen])}”). The model's next byte:`;
    const list = document.createElement("ol");
    for (const v of top) {
      const item = document.createElement("li");
      item.textContent = `${byteText(v)}  ${(probs[v] * 100).toFixed(1)}%`;
      list.append(item);
    }
    details.append(title, list);
    state.shown = { layer: l, head: h, position: chosen, top: top.map((v) => [v, probs[v]]) };
  }

  function run() {
    if (!W) return;
    bytes = [...new TextEncoder().encode(input.value)].slice(0, W.arch.n_ctx);
    if (!bytes.length) bytes = [32];
    result = forward(W, bytes);
    state.bytes = bytes;
    state.result = result;
    tokens.replaceChildren();
    bytes.forEach((b, j) => {
      const span = document.createElement("span");
      span.className = "explorer-live__token";
      span.setAttribute("role", "option");
      span.textContent = byteText(b);
      span.addEventListener("pointerenter", () => { chosen = j; paint(); });
      span.addEventListener("click", () => { chosen = j; paint(); });
      tokens.append(span);
      if (b === 10) tokens.append(document.createElement("br"));
    });
    chosen = bytes.length - 1;
    status.textContent = input.value.length && new TextEncoder().encode(input.value).length > W.arch.n_ctx
      ? `Only the first ${W.arch.n_ctx} bytes are read (the model's context).` : "";
    paint();
  }

  tokens.addEventListener("keydown", (event) => {
    if (!bytes.length) return;
    if (event.key === "ArrowRight") chosen = Math.min(bytes.length - 1, chosen + 1);
    else if (event.key === "ArrowLeft") chosen = Math.max(0, chosen - 1);
    else return;
    event.preventDefault();
    paint();
  });
  let timer = null;
  input.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(run, 150); });
  head.addEventListener("change", paint);

  state.ready = loadWeights(src).then((weights) => {
    W = weights;
    for (let l = 0; l < W.arch.n_layers; l++) {
      for (let h = 0; h < W.arch.n_heads; h++) {
        const option = document.createElement("option");
        option.value = `${l},${h}`;
        option.textContent = `L${l}H${h}`;
        head.append(option);
      }
    }
    head.value = root.dataset.head || `${W.arch.n_layers - 1},0`;
    status.textContent = "";
    run();
    return state;
  }).catch((error) => { status.textContent = `The model could not be loaded: ${error.message}`; throw error; });
  return state;
}

function start() {
  for (const root of document.querySelectorAll(".explorer-live:not([data-live-started])")) {
    root.dataset.liveStarted = "1";
    const begin = () => build(root);
    if ("IntersectionObserver" in window) {
      const seen = new IntersectionObserver((entries) => {
        if (entries.some((e) => e.isIntersecting)) { seen.disconnect(); begin(); }
      }, { rootMargin: "200px" });
      seen.observe(root);
    } else begin();
  }
}

window.explorerLive = { forward, loadWeights, byteText, start };
start();
if (typeof document$ !== "undefined") document$.subscribe(start);
