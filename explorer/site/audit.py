"""What a reader's browser sees: legibility and fit of every figure, measured in the page.

Shared by the browser tests (which assert the goals) and `make bench` (which prints them). Each
check is a JavaScript function evaluated by Playwright in a page whose figures are all drawn.
"""

from dataclasses import dataclass

LAPTOP, PHONE = (1280, 900), (390, 844)
MIN_TEXT_PX = {LAPTOP[0]: 10.0, PHONE[0]: 9.0}
MIN_CONTRAST = 3.0  # WCAG's ratio for large text and graphics; figure text must at least reach it

# Draw everything now (figures otherwise draw as they scroll into view) and wait until done.
RENDER_ALL = """async () => {
    while (!window.explorer) await new Promise(r => setTimeout(r, 20));
    await window.explorer.renderAll();
    await window.explorer.whenIdle();
}"""
ALL_DRAWN = """() => window.explorer && [...document.querySelectorAll('figure.explorer-figure')]
    .every(f => f.dataset.rendered === 'true' || f.dataset.rendered === 'error')"""
FAILED = """() => [...document.querySelectorAll('figure.explorer-figure')]
    .filter(f => f.dataset.rendered === 'error').map(f => f.dataset.figure + ': ' + f.textContent.trim().slice(0, 200))"""

# Per figure: the smallest text as drawn (font size x the scale it is drawn at), how far it
# reaches to the right, and whether its export buttons are on screen.
MEASURE = """(minPx) => [...document.querySelectorAll('figure.explorer-figure')].map(f => {
    const canvas = f.querySelector('.explorer-figure__chart canvas');
    let sized;
    if (canvas) {  // drawn on a canvas: read the text items from Vega's scenegraph, times the canvas's CSS scale
        const view = window.explorerFigures.get(f.dataset.figure).view;
        const scale = canvas.getBoundingClientRect().width / parseFloat(canvas.style.width || canvas.width);
        sized = [];
        const visit = (node) => {
            if (!node) return;
            if (node.marktype === 'text') for (const item of node.items || []) {
                const text = Array.isArray(item.text) ? item.text.join(' ') : String(item.text ?? '');
                if (text.trim() && (item.opacity ?? 1) > 0 && (item.fillOpacity ?? 1) > 0) sized.push([(item.fontSize || 11) * scale, text.trim().slice(0, 40)]);
            }
            for (const item of node.items || []) for (const child of item.items || []) visit(child);
        };
        visit(view.scenegraph().root);
    } else {
        const texts = [...f.querySelectorAll('.explorer-figure__chart svg text')].filter(t => t.textContent.trim() && t.getBBox().width > 0);
        sized = texts.map(t => {
            const m = t.getScreenCTM();
            return [Math.sqrt(Math.abs(m.a * m.d - m.b * m.c)) * parseFloat(getComputedStyle(t).fontSize), t.textContent.trim().slice(0, 40)];
        });
    }
    const small = sized.filter(([s]) => s < minPx - 0.05);
    const right = Math.max(0, ...[...f.querySelectorAll('svg, canvas, .explorer-figure__controls, figcaption')].map(e => e.getBoundingClientRect().right));
    const exports = [...f.querySelectorAll('.explorer-export__button')].map(b => b.getBoundingClientRect());
    return {
        id: f.dataset.figure, texts: sized.length, smallest: sized.length ? Math.min(...sized.map(([s]) => s)) : null,
        small: small.slice(0, 5).map(([s, t]) => `${s.toFixed(1)}px "${t}"`), smallCount: small.length,
        right: Math.ceil(right), exportsVisible: exports.length > 0 && exports.every(r => r.width > 0 && r.left >= 0 && r.right <= innerWidth),
        marks: canvas ? 1 : f.querySelectorAll('.explorer-figure__chart svg .role-mark > *').length,
    };
})"""

# Text colour against what lies under it: the nearest filled mark below the text, else the page.
CONTRAST = """(minRatio) => {
    const parse = (c) => { const m = c.match(/rgba?\\(([^)]+)\\)/); if (!m) return null;
        const p = m[1].split(',').map(Number); return p.length > 3 && p[3] === 0 ? null : p.slice(0, 3); };
    const lum = ([r, g, b]) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
        return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
    const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
    const page = parse(getComputedStyle(document.querySelector('.md-main') || document.body).backgroundColor)
        || parse(getComputedStyle(document.body).backgroundColor) || [255, 255, 255];
    const bad = [];
    const probe = document.createElement('span'); document.body.appendChild(probe);
    const rgb = (c) => { probe.style.color = ''; probe.style.color = c; return parse(getComputedStyle(probe).color); };
    for (const f of document.querySelectorAll('figure.explorer-figure')) {
        if (f.querySelector('.explorer-figure__chart canvas')) {  // canvas: text items against the page
            const visit = (node) => {
                if (!node) return;
                if (node.marktype === 'text') for (const item of node.items || []) {
                    const ink = item.fill && rgb(item.fill); const text = String(item.text ?? '').trim();
                    if (ink && text && ratio(ink, page) < minRatio) bad.push(`${f.dataset.figure}: "${text.slice(0, 30)}" ${item.fill} = ${ratio(ink, page).toFixed(2)}`);
                }
                for (const item of node.items || []) for (const child of item.items || []) visit(child);
            };
            visit(window.explorerFigures.get(f.dataset.figure).view.scenegraph().root);
            continue;
        }
        for (const t of f.querySelectorAll('.explorer-figure__chart svg text')) {
            if (!t.textContent.trim() || t.getBBox().width === 0) continue;
            const style = getComputedStyle(t);
            if (style.visibility === 'hidden' || Number(style.opacity) === 0 || Number(style.fillOpacity) === 0) continue;
            const ink = parse(style.fill); if (!ink) continue;
            let box = t.getBoundingClientRect();
            if (box.top < 0 || box.bottom > innerHeight || box.left < 0 || box.right > innerWidth) {  // elementsFromPoint sees the viewport only
                t.scrollIntoView({block: 'center', inline: 'center'}); box = t.getBoundingClientRect();
            }
            let under = page;
            for (const e of document.elementsFromPoint(box.left + box.width / 2, box.top + box.height / 2)) {
                if (e === t || !(e instanceof SVGGraphicsElement) || e.tagName === 'text' || e.tagName === 'tspan' || e.tagName === 'g' || e.tagName === 'svg') continue;
                const s = getComputedStyle(e); const fill = parse(s.fill);
                if (fill && Number(s.fillOpacity) * Number(s.opacity) > 0.5) { under = fill; break; }
            }
            const r = ratio(ink, under);
            if (r < minRatio) bad.push(`${f.dataset.figure}: "${t.textContent.trim().slice(0, 30)}" ${style.fill} on rgb(${under}) = ${r.toFixed(2)}`);
        }
    }
    probe.remove();
    return bad;
}"""


@dataclass
class FigureFit:
    id: str
    smallest: float | None
    small: list[str]
    right: int
    exports_visible: bool
    marks: int

    @classmethod
    def from_js(cls, row: dict) -> "FigureFit":
        return cls(row["id"], row["smallest"], row["small"], row["right"], row["exportsVisible"], row["marks"])


def measure(page, width: int) -> list[FigureFit]:
    """Every figure of a drawn page at viewport `width`."""
    return [FigureFit.from_js(row) for row in page.evaluate(MEASURE, MIN_TEXT_PX[width])]


def fit_problems(page, width: int) -> list[str]:
    """Everything on this drawn page that breaks the legibility and overflow goals, one line each."""
    problems = []
    scroll = page.evaluate("() => document.documentElement.scrollWidth")
    if scroll > width:
        problems.append(f"the page scrolls sideways ({scroll} px wide at {width})")
    for fig in measure(page, width):
        if fig.small:
            problems.append(f"{fig.id}: text under {MIN_TEXT_PX[width]} px: {', '.join(fig.small)}")
        if fig.right > width:
            problems.append(f"{fig.id}: reaches {fig.right} px, wider than the {width} px viewport")
        if not fig.exports_visible:
            problems.append(f"{fig.id}: its export buttons are not fully on screen")
        if fig.marks == 0:
            problems.append(f"{fig.id}: draws no marks")
    return problems


def contrast_problems(page) -> list[str]:
    return page.evaluate(CONTRAST, MIN_CONTRAST)
