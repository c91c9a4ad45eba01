"""train.fit's command line: --family F picks the shipped recipe (train/recipe.py, RECIPES), every recipe field is a
flag that overrides it, and the paths the run reads and writes."""

from __future__ import annotations

import argparse
import dataclasses
import json

from emotion_core.models.registry import ARCHITECTURES

from .recipe import RECIPES, Recipe

CHOICES = {"hint": ["states", "head", "none"], "architecture": list(ARCHITECTURES)}


def parse_bool(text: str) -> bool:
    if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
        raise argparse.ArgumentTypeError(f"expected true or false, not {text!r}")
    return text.lower() in ("true", "1", "yes")


def parse_numbers(text: str) -> tuple:
    """ "0.9,1.1" -> (0.9, 1.1): a tuple recipe field on the command line."""
    return tuple(json.loads(v) for v in text.split(","))


# how a recipe field of each annotated type is read from its flag (a new field of another type adds a row here)
FIELD_TYPES = {"float": float, "int": int, "str": str, "bool": parse_bool, "tuple": parse_numbers}


def parse_arch(items: list[str]) -> tuple:
    """["channels=160", "dilations=1,2,4,8"] -> (("channels", 160), ("dilations", (1, 2, 4, 8)))."""
    pairs = []
    for item in items:
        key, value = item.split("=", 1)
        pairs.append((key, tuple(int(v) for v in value.split(",")) if "," in value else json.loads(value)))
    return tuple(pairs)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        description="Train one model family with its recipe (train/recipe.py); "
        "recipe flags override the shipped recipe's fields."
    )
    ap.add_argument("--family", required=True, choices=list(RECIPES))
    ap.add_argument("--data", help="datasets directory (default $EMOTION_DATA_DIR or ./data)")
    ap.add_argument("--cache", help="feature cache directory (default $EMOTION_CACHE_DIR or ./cache)")
    ap.add_argument("--out", help="checkpoint directory (default $EMOTION_CHECKPOINTS or ./checkpoints)")
    ap.add_argument("--whisper", help="Whisper encoder: local directory or Hub id (default $EMOTION_WHISPER)")
    ap.add_argument(
        "--teacher", help="the Whisper checkpoint to distil from (default: whisper.pt in the output directory)"
    )
    ap.add_argument(
        "--efficientat",
        help="cnn2d: the AudioSet-pretrained EfficientAT mn04 state dict "
        "(default $EMOTION_EFFICIENTAT, else ../shared/weights/efficientat-mn04-as/)",
    )
    recipe = ap.add_argument_group("recipe fields (default: the family's shipped recipe; meanings in train/recipe.py)")
    for f in dataclasses.fields(Recipe):
        if f.name == "family":
            continue
        flag = "--" + f.name.replace("_", "-")
        if f.name == "arch":
            recipe.add_argument(
                flag,
                nargs="*",
                metavar="FIELD=VALUE",
                help="cnn1d/lstm architecture overrides, e.g. channels=160 dilations=1,2,4,8",
            )
        elif f.name in CHOICES:
            recipe.add_argument(flag, choices=CHOICES[f.name])
        else:
            kind = FIELD_TYPES[str(f.type).split(" |")[0]]
            recipe.add_argument(flag, type=kind, metavar=str(f.type).split(" |")[0].upper())
    return ap


def resolve(args: argparse.Namespace) -> Recipe:
    """The family's shipped recipe with the fields given on the command line replaced."""
    given = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(Recipe)
        if f.name != "family" and getattr(args, f.name) is not None
    }
    if "arch" in given:
        given["arch"] = parse_arch(given["arch"])
    if given.get("hint") == "none":
        given["hint"] = None
    return dataclasses.replace(RECIPES[args.family], **given)
