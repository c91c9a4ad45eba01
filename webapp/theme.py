"""How the page looks beyond Gradio's defaults: plots that follow the light/dark theme, and a layout that
holds at phone width (390 px). Passed to demo.launch(css=CSS, head=HEAD)."""

from __future__ import annotations

import json

import plotly.io as pio

TRANSPARENT = "rgba(0,0,0,0)"


def dark_template() -> dict:
    """plotly's own dark template, on a transparent background so the page's dark colour shows through."""
    t = pio.templates["plotly_dark"].to_plotly_json()
    t["layout"].update(paper_bgcolor=TRANSPARENT, plot_bgcolor=TRANSPARENT)
    return t


# Gradio draws every gr.Plot with window.Plotly.react. When the page is dark (Gradio puts the class "dark"
# on <body> for ?__theme=dark or a dark system setting), each figure is drawn with the dark template instead
# of the light one its JSON carries; the figures themselves stay theme-free.
HEAD = """<script>
(() => {
  const DARK = %s;
  const isDark = () => document.body.classList.contains("dark") || document.documentElement.classList.contains("dark");
  const themed = (layout) => (layout && isDark()) ? Object.assign({}, layout, {template: DARK}) : layout;
  let plotly;
  Object.defineProperty(window, "Plotly", {configurable: true, get: () => plotly, set: (P) => {
    plotly = P;
    for (const name of ["react", "newPlot"]) {
      const original = P[name];
      if (typeof original !== "function" || original.themed) continue;
      P[name] = function (gd, data, layout, config) { return original.call(this, gd, data, themed(layout), config); };
      P[name].themed = true;
    }
  }});
})();
</script>""" % json.dumps(dark_template())  # noqa: UP031 (the JavaScript around it is full of braces)

# A tap on an example while the result is out of sight (on a phone it is far above the example list): bring the
# result's summary to the top of the screen, where the progress and then the answer appear. (Gradio's own
# scroll_to_output did not move the page here: its target is the status of the one output showing progress.)
SHOW_RESULT_JS = """() => { const summary = document.querySelector('#summary');
  const top = summary ? summary.getBoundingClientRect().top : 0;
  if (summary && (top < 0 || top > window.innerHeight * 0.8)) summary.scrollIntoView({block: 'start'}); }"""

# Words in table headings and titles are never split mid-word. On a laptop a table heading wraps between words,
# so the widest table of the report fits 1366 px; at phone width headings stay on one line and a wide table
# scrolls instead.
CSS = """
.prose th, .prose td, .prose h1, .prose h2, .prose h3 { word-break: normal !important; overflow-wrap: normal !important;
  hyphens: none !important; }
.guess-buttons button { min-width: 6.5em; }
@media (max-width: 500px) {
  .prose table { display: block; overflow-x: auto; max-width: 100%; }
  .prose th { white-space: nowrap; }
  .prose th, .prose td { padding: 4px 6px !important; }
}
"""
