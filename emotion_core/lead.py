"""The headline rule: which output the page headlines (and the CLI answers with, and the API names "lead"),
and the plain sentence that says why. Recognizer.lead and Recognizer.lead_reason apply it to the models
running."""

from __future__ import annotations

from .labels import MODEL_NAMES


def lead_model(names: list[str], scores: dict[str, float]) -> str:
    """The output to headline: the highest validation score among `names` (the outputs running, in order);
    names without a score are passed over; the first name when none has one; the first of equals."""
    scored = [n for n in names if n in scores]
    return max(scored, key=lambda n: scores[n]) if scored else (names[0] if names else "")


def lead_reason(lead: str, names: list[str], scores: dict[str, float], ensemble_alone: str | None = None) -> str:
    """One plain sentence: which output leads and why (its validation score against the others'); and, when the
    ensemble holds the lead alone (ensemble_alone), a second one: why no mix answers."""
    shown = MODEL_NAMES.get(lead, lead)
    if lead not in scores:
        return f"{shown} leads: no validation score was recorded for the models running here."
    others = sorted((n for n in names if n != lead and n in scores), key=lambda n: -scores[n])
    against = "; ".join(f"{MODEL_NAMES.get(n, n)} {scores[n]:.1%}" for n in others)
    why = (
        f"Why {shown} leads: of the models running here, it was right most often on voices none of them "
        f"trained on ({scores[lead]:.1%} balanced recall on the validation speakers"
        + (f"; {against}" if against else "")
        + ")."
    )
    if ensemble_alone == lead:
        why += f" No ensemble: no mix of the models beat {shown} reliably on those speakers, so {shown} answers alone."
    return why
