"""The reader's side of `make bench`: page load to figures drawn, slider latency, Lighthouse.

Printed, never asserted (timings depend on the machine and its load). Goals, from the
figure-system issue: every page's figures drawn within 1.0 s of loading; one step of the backprop
playground's slider (3 layers of 8) within 50 ms; Lighthouse (mobile emulation) performance >= 90
and accessibility >= 95 on every page.
"""

import functools
import gzip
import http.server
import io
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from explorer import paths
from explorer.site import audit

RENDER_GOAL_S = 1.0
SLIDER_GOAL_MS = 50.0
LIGHTHOUSE = "lighthouse@12.2.3"
LIGHTHOUSE_GOALS = {"performance": 0.90, "accessibility": 0.95}
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]
PLAYGROUND_3X8 = "curriculum/backprop/?backprop-playground.layers=3&backprop-playground.width=8"

# One slider step as a reader makes it: set the input, let the page update the figure, wait for the
# frame to be painted. Median and worst over two passes through every checkpoint.
SLIDER_STEPS = """async (name) => {
    const r = window.explorerFigures.get('backprop-playground');
    const input = r.el.querySelector(`input[type=range][name=${name}]`);
    const steps = +input.max - +input.min + 1, times = [];
    const painted = () => new Promise((res) => requestAnimationFrame(() => setTimeout(res, 0)));
    for (let k = 0; k < 2 * steps; k++) {
        const t0 = performance.now();
        input.value = String(k % steps);
        input.dispatchEvent(new Event('input', {bubbles: true}));
        while (r.el.dataset.rendered !== 'true') await new Promise((res) => setTimeout(res, 1));
        await painted();
        times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    return {median: times[times.length >> 1], worst: times[times.length - 1], steps: times.length};
}"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """A static host as a reader meets it: text files gzip-compressed (as any web host does), no log."""

    COMPRESS = (".html", ".css", ".js", ".json", ".svg", ".xml")
    _gzipped: dict[str, bytes] = {}

    def log_message(self, *args) -> None:
        pass

    def send_head(self):
        path = self.translate_path(self.path)
        if os.path.isdir(path):
            path = os.path.join(path, "index.html")
        if not (path.endswith(self.COMPRESS) and "gzip" in self.headers.get("Accept-Encoding", "") and os.path.isfile(path)):
            return super().send_head()
        if path not in self._gzipped:
            self._gzipped[path] = gzip.compress(Path(path).read_bytes(), compresslevel=6)
        body = self._gzipped[path]
        self.send_response(200)
        self.send_header("Content-Type", self.guess_type(path))
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        return io.BytesIO(body)


@contextmanager
def served(site: Path) -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()


def figure_pages(site: Path) -> list[str]:
    return ["" if p.parent == site else str(p.parent.relative_to(site)) + "/"
            for p in sorted(site.rglob("index.html")) if 'class="explorer-figure"' in p.read_text()]


def all_pages(site: Path) -> list[str]:
    return ["" if p.parent == site else str(p.parent.relative_to(site)) + "/"
            for p in sorted(site.rglob("index.html")) if "404" not in p.parts and p.parent.name != "search"]


def bench_render(site: Path, repeat: int = 3) -> None:
    """Load each page and draw all of its figures at once (readers get them as they scroll, which is sooner)."""
    from playwright.sync_api import sync_playwright

    print(f"page load to every figure drawn, headless Chromium at {audit.LAPTOP[0]} px (goal <= {RENDER_GOAL_S} s), median of {repeat}:")
    with served(site) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        for path in figure_pages(site):
            samples = []
            for _ in range(repeat):
                page = browser.new_page(viewport={"width": audit.LAPTOP[0], "height": audit.LAPTOP[1]})
                start = time.perf_counter()
                page.goto(base + path)
                page.evaluate(audit.RENDER_ALL)
                page.wait_for_function(audit.ALL_DRAWN, timeout=120_000)
                samples.append(time.perf_counter() - start)
                page.close()
            median = statistics.median(samples)
            print(f"  {path or '(home)':44} {median:6.2f} s{'' if median <= RENDER_GOAL_S else '  OVER GOAL'}")
        browser.close()


def bench_slider(site: Path) -> None:
    from playwright.sync_api import sync_playwright

    with served(site) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": audit.LAPTOP[0], "height": audit.LAPTOP[1]})
        page.goto(base + PLAYGROUND_3X8)
        page.evaluate(audit.RENDER_ALL)
        page.wait_for_function(audit.ALL_DRAWN, timeout=120_000)
        result = page.evaluate(SLIDER_STEPS, "ckpt")
        browser.close()
    flag = "" if result["median"] <= SLIDER_GOAL_MS else "  OVER GOAL"
    print(f"backprop playground, 3 layers of 8: one slider step median {result['median']:.0f} ms, worst {result['worst']:.0f} ms "
          f"over {result['steps']} steps (goal <= {SLIDER_GOAL_MS:.0f} ms){flag}")


def lighthouse_command() -> list[str] | None:
    """The pinned Lighthouse, installed into .bench/ with npm on first use (None without npm)."""
    local = paths.REPO / ".bench" / "node_modules" / ".bin" / "lighthouse"
    if not local.exists():
        if shutil.which("npm") is None:
            return None
        (paths.REPO / ".bench").mkdir(exist_ok=True)
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent", "--prefix", str(paths.REPO / ".bench"), LIGHTHOUSE],
                       check=True, capture_output=True)
    return [str(local)]


def bench_lighthouse(site: Path, pages: list[str] | None = None) -> None:
    """Lighthouse's standard audit in its default mobile emulation, on every page.

    Its CPU slowdown (4x) is relative to the host: Lighthouse's throttling guide calibrates 4x for a
    high-end desktop (benchmark index 1500-2000), so on a slower host the scores are pessimistic;
    each row prints the host's index, measured during that run."""
    command = lighthouse_command()
    if command is None:
        print("lighthouse: skipped (npm is not installed)")
        return
    goals = ", ".join(f"{k} >= {v * 100:.0f}" for k, v in LIGHTHOUSE_GOALS.items())
    print(f"Lighthouse {LIGHTHOUSE.split('@')[1]}, mobile emulation (goals: {goals}):")
    env = {**os.environ, "CHROME_PATH": CHROMIUM}
    with served(site) as base, tempfile.TemporaryDirectory() as tmp:
        for path in pages if pages is not None else all_pages(site):
            out = Path(tmp) / "report.json"
            subprocess.run([*command, base + path, "--output=json", f"--output-path={out}", "--quiet",
                            "--only-categories=performance,accessibility",
                            "--chrome-flags=--headless=new --no-sandbox --disable-gpu"], env=env, capture_output=True)
            if not out.exists():
                print(f"  {path or '(home)':44} no report")
                continue
            report = json.loads(out.read_text())
            scores = {k: report["categories"][k]["score"] or 0 for k in LIGHTHOUSE_GOALS}
            audits = report["audits"]
            failing = [a["id"] for a in report["categories"]["accessibility"]["auditRefs"]
                       if audits[a["id"]]["score"] is not None and audits[a["id"]]["score"] < 1 and a["weight"] > 0]
            under = [k for k, goal in LIGHTHOUSE_GOALS.items() if scores[k] < goal]
            print(f"  {path or '(home)':44} performance {scores['performance'] * 100:3.0f}  accessibility {scores['accessibility'] * 100:3.0f}"
                  f"  LCP {audits['largest-contentful-paint']['displayValue']:>7}  TBT {audits['total-blocking-time']['displayValue']:>8}"
                  f"  host CPU index {report['environment'].get('benchmarkIndex', 0):5.0f}"
                  f"{'  UNDER GOAL: ' + ', '.join(under) if under else ''}{'  failing: ' + ', '.join(failing) if failing else ''}")
