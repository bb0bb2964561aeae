"""Widget figures: its bytes, what it costs the shop's page on load, and how fast it answers.

Serves the bundled articles (searched with the packaged model, as a shop runs it) and a shop page on another
origin with the tag, then, in headless Chromium, over ``--runs`` fresh tabs:

- bytes of widget.js + widget.css, gzipped (level 6, as a server compresses, and 9);
- long tasks (over 50 ms) on the shop page from navigation to 2 s after load, with and without the tag;
- click on the launcher to the first suggested article visible (the /start round trip included);
- a search sent to the first result visible.

    python -m tests.browser.widget_figures [--runs 10] [--json]
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import statistics
import tempfile
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from tests.browser.conftest import CHROMIUM, ROOT
from tests.browser.test_widget_ui import Shop, help_centre_for

LONG_TASKS = """window.__long = [];
new PerformanceObserver(list => list.getEntries().forEach(e => window.__long.push(e.duration)))
  .observe({type: 'longtask', buffered: true});"""
OPEN = """async () => {
  const root = document.getElementById('kb-widget-host').shadowRoot;
  const t0 = performance.now();
  root.querySelector('[data-kb=launcher]').click();
  while (!root.querySelector('.kb-suggested .kb-card')) { await new Promise(r => requestAnimationFrame(r)); }
  return performance.now() - t0;
}"""
SEARCH = """async (query) => {
  const root = document.getElementById('kb-widget-host').shadowRoot;
  const input = root.querySelector('[data-kb=search]');
  input.value = query;
  const t0 = performance.now();
  root.querySelector('.kb-search button[type=submit]').click();
  while (!root.querySelector('[data-kb=result]')) { await new Promise(r => requestAnimationFrame(r)); }
  return performance.now() - t0;
}"""
QUERIES = ["where is my parcel", "how do I return a jacket", "payment declined", "refund not arrived",
           "change delivery address", "tent zip broken", "klarna", "gift card balance", "size guide boots",
           "cancel my order"]


def bytes_gzipped() -> dict[str, int]:
    files = [ROOT / "static" / "widget" / name for name in ("widget.js", "widget.css")]
    raw = b"".join(f.read_bytes() for f in files)
    return {"raw": len(raw), "gzip6": sum(len(gzip.compress(f.read_bytes(), 6)) for f in files),
            "gzip9": sum(len(gzip.compress(f.read_bytes(), 9)) for f in files)}


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"median": round(statistics.median(ordered), 1), "p95": round(ordered[int(0.95 * (len(ordered) - 1))], 1),
            "max": round(ordered[-1], 1)}


def measure(runs: int) -> dict[str, object]:
    from search.embeddings import choose_embedder

    embedder = choose_embedder()
    embedder.load()
    monkeypatch = pytest.MonkeyPatch()
    shop = Shop()
    figures: dict[str, object] = {"bytes": bytes_gzipped(), "runs": runs}
    try:
        with help_centre_for(Path(tempfile.mkdtemp(prefix="kb-widget-")), monkeypatch, shop.url,
                             embedder=embedder) as centre, sync_playwright() as playwright:
            shop.kb = centre.url
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            long_with: list[float] = []
            long_without: list[float] = []
            opened: list[float] = []
            searched: list[float] = []
            for run in range(runs):
                for tag, found in ((True, long_with), (False, long_without)):
                    context = browser.new_context(viewport={"width": 1280, "height": 900})
                    context.add_init_script(LONG_TASKS)
                    tab = context.new_page()
                    if not tag:  # the same page without the widget's script
                        tab.route("**/widget.js", lambda route: route.fulfill(status=200, body="",
                                                                            content_type="text/javascript"))
                    tab.goto(shop.url + "/", wait_until="load")
                    tab.wait_for_timeout(2000)
                    found.extend(tab.evaluate("window.__long"))
                    if tag:
                        opened.append(tab.evaluate(OPEN))
                        searched.append(tab.evaluate(SEARCH, QUERIES[run % len(QUERIES)]))
                    context.close()
            browser.close()
    finally:
        shop.close()
        monkeypatch.undo()
    figures["long_tasks_on_load"] = {"with_widget": len(long_with), "without_widget": len(long_without),
                                     "longest_with_ms": round(max(long_with, default=0.0), 1)}
    figures["click_to_suggestions_ms"] = summary(opened)
    figures["search_to_results_ms"] = summary(searched)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line a request otherwise
    figures = measure(args.runs)
    print(json.dumps(figures) if args.json else "\n".join(f"{k}: {v}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
