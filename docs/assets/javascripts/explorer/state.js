// Linkable state: a figure's control values live in the page URL as `?<figure>.<control>=<value>`,
// so a reader can share the exact view and the prose can link to a state (`{{ try: ... }}`).
// Only values that differ from the defaults are written, to keep addresses short.

export function readState(id) {
  const found = {};
  const prefix = `${id}.`;
  for (const [key, value] of new URLSearchParams(location.search)) {
    if (key.startsWith(prefix)) found[key.slice(prefix.length)] = value;
  }
  return found;
}

const pending = new Map();

/** Write a figure's state into the address, at most every 200 ms (a dragged slider fires far more
 *  often, and browsers throttle history updates). */
export function writeState(id, state, defaults) {
  clearTimeout(pending.get(id));
  pending.set(id, setTimeout(() => { pending.delete(id); writeNow(id, state, defaults); }, 200));
}

function writeNow(id, state, defaults) {
  const params = new URLSearchParams(location.search);
  const prefix = `${id}.`;
  for (const key of [...params.keys()]) if (key.startsWith(prefix)) params.delete(key);
  for (const [name, value] of Object.entries(state)) {
    if (String(value) !== String(defaults[name])) params.set(prefix + name, String(value));
  }
  const query = params.toString();
  const url = location.pathname + (query ? `?${query}` : "") + location.hash;
  if (url !== location.pathname + location.search + location.hash) history.replaceState(history.state, "", url);
}

/** The state a `{{ try }}` link asks for: {figure, values} from its data attributes. */
export function linkState(link) {
  try {
    return { figure: link.dataset.figure, values: JSON.parse(link.dataset.state || "{}") };
  } catch (e) {
    console.warn(`try link: bad state ${link.dataset.state}`);
    return null;
  }
}
