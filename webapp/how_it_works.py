"""The How it works tab: the pipeline picture, the test results (per dataset, confusion matrices per model and
condition), how sure against how right, each model's story and technical card, the exact numbers and the teachers'
page. Built inside app.py's Blocks; the texts are in webapp.howto and webapp.teachers."""

from __future__ import annotations

import gradio as gr

from emotion_core.labels import MODEL_NAMES

from . import certainty, howto, report_figures, teachers


def tab(recognizer, reports: dict, reliability: dict):
    """Lay the tab out (call inside `with gr.Tab(...)`) -> (pipeline, family, condition, confusion): the components
    app.py's events fill."""
    gr.Markdown(howto.PIPELINE)
    pipeline = gr.Plot(
        label="from sound to answer (the last clip analysed, else an example)", show_label=False, elem_id="pipeline"
    )
    gr.Markdown(howto.RESULTS_INTRO)
    gr.Plot(
        report_figures.uar_figure(reports) if reports else None,
        label="accuracy per test dataset",
        show_label=False,
        elem_id="uar",
    )
    names = report_figures.model_order(reports)
    with gr.Row():
        family = gr.Radio(
            [(MODEL_NAMES.get(n, n), n) for n in names],
            value=names[0] if names else None,
            label="Confusion matrix of",
        )
        condition = gr.Radio(
            list(reports), value=next(iter(reports), None), label="conditions", visible=len(reports) > 1
        )
    confusion = gr.Plot(
        report_figures.confusion_figure(reports, names[0]) if names else None,
        label="confusion matrix",
        elem_id="confusion",
    )
    if reliability:
        gr.Markdown(
            "## How sure, how right?\nEach point is a group of validation clips the model was about equally "
            "sure of: how sure it was (across) and how often it was right (up). On the dotted diagonal a "
            "model is exactly as sure as it is right. "
            + certainty.threshold_sentence(reliability["threshold"])
            + " The dashed line marks it."
        )
        gr.Plot(certainty.reliability_figure(reliability), label="reliability", show_label=False, elem_id="reliability")
    gr.Markdown("## The models")
    for name in howto.family_names(recognizer):
        gr.Markdown(f"### {MODEL_NAMES.get(name, name)}\n{howto.story(name, recognizer)}")
        with gr.Accordion(f"Technical card: {MODEL_NAMES.get(name, name)}", open=False):
            gr.Markdown(howto.technical_card(name, recognizer))
    with gr.Accordion("The exact numbers (reports/test.md)", open=False):
        gr.Markdown(howto.report_tables())
    with gr.Accordion(
        "For teachers: a 10-minute lesson, questions to discuss, who the models fail, the voices they learned from",
        open=False,
        elem_id="teachers",
    ):
        gr.Markdown(teachers.teachers_page(reports))
    return pipeline, family, condition, confusion
