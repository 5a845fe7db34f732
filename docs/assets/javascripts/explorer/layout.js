// Layout: a figure is drawn at its own size, never scaled down. When it is wider than the room
// the page gives it, its side-by-side views wrap onto new rows, wrapped facet grids take fewer
// columns, and as a last resort a view's plot area narrows (its text keeps its size).
//
// How: every `hconcat` becomes a `concat` with `columns` (the same picture while it fits). After a
// render the view's scenegraph says how wide each part came out; `refit` turns those widths into
// new column counts and plot widths, and the figure is drawn again (at most a few passes).

const SPACING = 20; // Vega-Lite's default concat / facet spacing

const clone = (x) => JSON.parse(JSON.stringify(x));

/** A copy of `spec` in which side-by-side views can wrap. */
export function wrappable(spec) {
  const out = clone(spec);
  walk(out, (node) => {
    if (Array.isArray(node.hconcat)) {
      node.concat = node.hconcat;
      delete node.hconcat;
      node.columns = node.concat.length;
    }
  });
  return out;
}

/** Legends on the side take room a phone does not have: move them below their view. */
export function narrowLegends(spec) {
  walk(spec, (node) => {
    if (node.legend && typeof node.legend === "object" && ["left", "right"].includes(node.legend.orient)) {
      node.legend = { ...node.legend, orient: "bottom", direction: "horizontal" };
    }
  });
  return spec;
}

function walk(node, visit) {
  if (Array.isArray(node)) node.forEach((v) => walk(v, visit));
  else if (node && typeof node === "object") {
    visit(node);
    Object.values(node).forEach((v) => walk(v, visit));
  }
}

// ---------------------------------------------------------------------------------------------
// The view tree of a (wrappable) spec, each node with the name prefix Vega-Lite gives its marks.

function children(node) {
  for (const key of ["concat", "vconcat", "hconcat"]) if (Array.isArray(node[key])) return { key, list: node[key] };
  return null;
}

// A view Altair named (it does for views that hold a selection) keeps its name as its prefix.
function childPrefix(prefix, i, child) {
  if (child && typeof child.name === "string" && child.name) return child.name;
  return prefix ? `${prefix}_concat_${i}` : `concat_${i}`;
}

// Scenegraph: every group mark by name, with its items.
function groupsByName(view) {
  const found = new Map();
  const visit = (mark) => {
    if (!mark || !mark.items) return;
    if (mark.marktype === "group" && mark.name) found.set(mark.name, mark.items);
    for (const item of mark.items) if (item.items) item.items.forEach(visit);
  };
  visit(view.scenegraph().root);
  return found;
}

const boundsWidth = (item) => (item && item.bounds ? item.bounds.x2 - item.bounds.x1 : 0);

/** Measured width of the whole drawing (including legends and titles), in CSS px. */
export function drawnWidth(view) {
  const root = view.scenegraph().root;
  const item = root && root.items && root.items[0];
  const padding = view.padding ? view.padding() : { left: 0, right: 0 };
  return boundsWidth(item) + (padding.left || 0) + (padding.right || 0);
}

/**
 * Given a spec that was drawn wider than `room`, return a spec laid out to fit (or null when
 * nothing more can be done). `view` is the drawing of `spec`.
 */
export function refit(spec, view, room) {
  const groups = groupsByName(view);
  const out = clone(spec);
  let changed = false;

  // Returns the width the node will take after fitting (best estimate).
  const fit = (node, prefix, measured, avail) => {
    const kids = children(node);
    if (kids) {
      // A vconcat lines its views up on their plot areas: a view that starts right of the others (the
      // others have wider axes on the left) has that much less room on the right.
      const items = kids.list.map((child, i) => (groups.get(`${childPrefix(prefix, i, child)}_group`) || [])[0]);
      const lefts = items.map((item) => (item && item.bounds ? item.bounds.x1 : 0));
      const leftmost = Math.min(...lefts);
      const widths = kids.list.map((child, i) => {
        const room = kids.key === "vconcat" ? avail - (lefts[i] - leftmost) : avail;
        return fit(child, childPrefix(prefix, i, child), boundsWidth(items[i]), room);
      });
      if (kids.key === "vconcat") return Math.max(...widths.map((w, i) => w + lefts[i] - leftmost));
      const spacing = node.spacing ?? SPACING;
      let columns = node.columns ?? widths.length;
      while (columns > 1 && rowWidth(widths, columns, spacing) > avail) columns -= 1;
      if (kids.key === "concat" && columns !== (node.columns ?? widths.length)) {
        node.columns = columns;
        changed = true;
      }
      return rowWidth(widths, columns, spacing);
    }
    if (measured <= avail) return measured;
    if (node.facet && node.spec) return fitFacet(node, prefix, measured, avail);
    return shrink(node, measured, avail, prefix);
  };

  const fitFacet = (node, prefix, measured, avail) => {
    const cells = groups.get(prefix ? `${prefix}_cell` : "cell") || [];
    const cellWidth = cells.length ? Math.max(...cells.map((c) => c.width || 0)) : 0;
    const spacing = typeof node.spacing === "number" ? node.spacing : SPACING;
    if (node.facet.field !== undefined && cells.length > 1 && cellWidth > 0) { // a wrapped facet: fewer columns
      const columns = node.columns ?? cells.length;
      const overhead = measured - (columns * cellWidth + (columns - 1) * spacing);
      const fits = Math.max(1, Math.floor((avail - overhead + spacing) / (cellWidth + spacing)));
      if (fits < columns) {
        node.columns = fits;
        changed = true;
        return overhead + fits * cellWidth + (fits - 1) * spacing;
      }
    }
    const perRow = node.columns ?? (node.facet.column ? countColumns(cells) : 1);
    return shrink(node.spec, measured, avail, prefix, perRow, cellWidth);
  };

  const shrink = (node, measured, avail, prefix, perCell = 1, plotWidth = null) => {
    const current = plotWidth ?? plotWidthOf(node, prefix, groups);
    if (!current) return measured;
    const excess = (measured - avail) / perCell;
    const target = Math.floor(current - excess - 2);
    const floor = 60;
    if (target < floor || target >= current) return measured;
    node.width = target;
    changed = true;
    return measured - (current - target) * perCell;
  };

  const padding = view.padding ? view.padding() : { left: 0, right: 0 };
  const pads = (padding.left || 0) + (padding.right || 0); // the drawing's own margin: no view can use it
  fit(out, "", drawnWidth(view) - pads, room - pads);
  return changed ? out : null;
}

function rowWidth(widths, columns, spacing) {
  // align "each": a column is as wide as its widest view
  const cols = new Array(columns).fill(0);
  widths.forEach((w, i) => { cols[i % columns] = Math.max(cols[i % columns], w); });
  return cols.reduce((a, b) => a + b, 0) + spacing * (columns - 1);
}

function countColumns(cells) {
  return new Set(cells.map((c) => c.x)).size || 1;
}

function plotWidthOf(node, prefix, groups) {
  if (typeof node.width === "number") return node.width;
  const items = groups.get(prefix ? `${prefix}_group` : "root") || [];
  if (items[0] && items[0].width) return items[0].width;
  if (node.width && typeof node.width === "object" && node.width.step) return null; // width from a step: leave it
  return null;
}

// ---------------------------------------------------------------------------------------------
// Speed: Vega re-runs a mark's whole `update` encoding for every item a signal touches. In a figure
// whose items never move once drawn (the playground's planes: a slider only recolours them), the
// positions can be set once, when an item enters, so a slider step re-encodes only what changes.
// The figure redraws when its layout changes (layout.js, resize), which re-enters every item.

const POSITION = ["x", "x2", "y", "y2", "xc", "yc", "width", "height"];

/** vega-embed `patch`: move mark positions from `update` to `enter` (group marks keep theirs). */
export function positionsOnEnter(vgSpec) {
  const visit = (node) => {
    for (const mark of node.marks || []) {
      if (mark.type === "group") { visit(mark); continue; }
      const update = mark.encode && mark.encode.update;
      if (!update) continue;
      mark.encode.enter = mark.encode.enter || {};
      for (const channel of POSITION) {
        if (channel in update) {
          mark.encode.enter[channel] = update[channel];
          delete update[channel];
        }
      }
    }
  };
  visit(vgSpec);
  return vgSpec;
}
