"""The "Backbone" box at the top of a claim page, computed from the run's settings: true for any models a run uses."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Sequence

__all__ = ["BackboneNote", "backbone_note", "model_family"]

_STAND_INS = ("vlmcal's **offline stand-in VLMs** (a frozen all-MiniLM-L6-v2 text tower with small image towers "
              "pretrained the way CLIP is, on captioned scenes built from Fashion-MNIST's train split, with a learned "
              "logit scale)")
_SUPERVISED = "vlmcal's CNN trained with cross-entropy on Fashion-MNIST, standing in for the papers' ImageNet-trained models"


def model_family(name: str) -> str:
    """Which kind of model a backbone name is: ``"stand-in"``, ``"random"``, ``"supervised"`` or ``"pretrained"``.

    >>> [model_family(n) for n in ("default-wide", "openclip:vlmcal-tiny:random", "openclip:ViT-B-32:openai")]
    ['stand-in', 'random', 'pretrained']
    """
    if name == "default" or name.startswith("default-"):
        return "stand-in"
    if name == "supervised" or name.startswith("supervised-"):
        return "supervised"
    return "random" if name.startswith("openclip:") and name.endswith(":random") else "pretrained"


def _names(names: Sequence[str]) -> str:
    return ", ".join(f"`{name}`" for name in names)


@dataclass(frozen=True)
class BackboneNote:
    """An admonition box of Markdown paragraphs (`code`, **bold**): HTML in Jupyter Book's style, else a quote."""

    paragraphs: tuple[str, ...]
    title: str = "Backbone"
    kind: str = "important"

    def _repr_markdown_(self) -> str:
        return "\n>\n".join([f"> **{self.title}**"] + [f"> {p}" for p in self.paragraphs])

    def _repr_html_(self) -> str:
        body = "".join(f"<p>{_inline_html(p)}</p>" for p in self.paragraphs)
        return (f'<div class="admonition {html.escape(self.kind)}"><p class="admonition-title">{html.escape(self.title)}</p>'
                f"{body}</div>")

    def __str__(self) -> str:
        return "\n".join(self.paragraphs)


def _inline_html(text: str) -> str:
    """`code` and **bold** of one paragraph as HTML, everything else escaped."""
    coded = re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text, quote=False))
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", coded)


def _vlm_paragraphs(backbones: Sequence[str]) -> list[str]:
    by_family: dict[str, list[str]] = {}
    for name in backbones:
        by_family.setdefault(model_family(name), []).append(name)
    if set(by_family) == {"stand-in"}:
        return [f"The figures on this page come from {_STAND_INS}: {_names(backbones)}. They are not CLIP's numbers."]
    parts = [f"The figures on this page are those of {_names(backbones)} (from this run's parameters)."]
    if "stand-in" in by_family:
        parts.append(f"{_names(by_family['stand-in'])}: {_STAND_INS}, not CLIP.")
    if "random" in by_family:
        parts.append(f"{_names(by_family['random'])}: **random weights** (a test model), so its figures exercise the code "
                     "and say nothing about calibration.")
    return parts


def _supervised_paragraph(settings) -> str:
    joined = [m for m in settings.models if m not in settings.backbones]
    if joined:
        return f"Supervised baseline: {_names(joined)}, {_SUPERVISED}."
    if settings.supervised:
        return (f"No supervised baseline is in this run: `{settings.supervised}` joins only runs on `fashion-mnist`, "
                "its training data.")
    return "No supervised baseline is in this run."


def backbone_note(settings, scope: str = "") -> BackboneNote:
    """The page's Backbone box, from the models and data the run was given; a cell's last expression displays it.

    ``settings``: a :class:`vlmcal.papers.es.StudySettings` (its backbones, models, supervised and dataset are read);
    ``scope``: what of the data set the page uses, e.g. ``"clean test set"`` (optional)."""
    data = f"Data: `{settings.dataset}`" + (f", {scope}" if scope else "") + "."
    return BackboneNote(tuple(_vlm_paragraphs(list(settings.backbones)) + [_supervised_paragraph(settings), data]))
