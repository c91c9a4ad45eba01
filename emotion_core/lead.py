"""Which output the page, the CLI and the API headline, and the sentence that says why: the highest validation
score among the outputs running (recognizer.py's module docstring has the rule's reasons)."""
from __future__ import annotations

from .labels import MODEL_NAMES


def lead_model(names: list[str], scores: dict[str, float]) -> str:
    """The output to headline: the highest validation score among `names` (the outputs running, in order);
    names without a score are passed over; the first name when none has one; the first of equals."""
    scored = [n for n in names if n in scores]
    return max(scored, key=lambda n: scores[n]) if scored else (names[0] if names else "")


def lead_reason(lead: str, names: list[str], scores: dict[str, float]) -> str:
    """One plain sentence: which output leads and why (its validation score against the others')."""
    shown = MODEL_NAMES.get(lead, lead)
    if lead not in scores:
        return f"{shown} leads: no validation score was recorded for the models running here."
    others = sorted((n for n in names if n != lead and n in scores), key=lambda n: -scores[n])
    against = "; ".join(f"{MODEL_NAMES.get(n, n)} {scores[n]:.1%}" for n in others)
    return (f"Why {shown} leads: of the models running here, it was right most often on voices none of them "
            f"trained on ({scores[lead]:.1%} balanced recall on the validation speakers"
            + (f"; {against}" if against else "") + ").")
