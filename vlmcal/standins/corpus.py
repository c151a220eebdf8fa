"""The stand-ins' pretraining corpus: web-like captioned scenes built from the Fashion-MNIST train split.

A scene holds 1 to 4 train items (``ITEM_COUNT_PROBS``) on a 28x28 canvas: one at 16-28 px, two side by side (or
stacked) at 11-14 px, three or four in random quadrants at 10-14 px. A fraction ``p_styled`` is rendered in a shift of
a ``COVERED_FAMILIES`` family (severity 1-5); no scene shows ``HELD_OUT_FAMILIES`` (ImageNet-C's "digital"). Captions
name the items in one of ``SCENE_CAPTION_FORMS``, sometimes with positions or the style; none is an evaluation
prompt. ``kind="task"`` is the ablation: single clean items, captioned by a ``CAPTION_POOL`` form of their class.
Example:
    >>> corpus = make_corpus(CorpusConfig(n_scenes=8))
    >>> corpus.images.shape, len(corpus.captions_per_scene())
    (torch.Size([8, 1, 28, 28]), 8)
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F

from vlmcal.data import datasets  # looked up at call time: the tests watch which split is read
from vlmcal.data.shifts import SEVERITIES, SHIFT_FAMILIES, apply_shift
from vlmcal.data.templates import CAPTION_POOL, FASHION_MNIST_CLASSNAMES

__all__ = ["COVERED_FAMILIES", "HELD_OUT_FAMILIES", "ITEM_COUNT_PROBS", "SCENE_CAPTION_FORMS", "STYLE_WORDS",
           "CorpusConfig", "Corpus", "make_corpus", "covered_shifts", "held_out_shifts"]

CANVAS = 28  # the test images' size, so that one backbone input serves both

# The families of ``SHIFT_FAMILIES`` the default corpus renders scenes in, and the one it holds out.
COVERED_FAMILIES: tuple[str, ...] = ("noise", "blur", "weather", "rendition")
HELD_OUT_FAMILIES: tuple[str, ...] = ("digital",)

ITEM_COUNT_PROBS: tuple[float, ...] = (0.4, 0.3, 0.2, 0.1)  # P(1 item), ..., P(4 items)

# How a caption names a scene's items: alt-text forms, none of them an evaluation template.
SCENE_CAPTION_FORMS: tuple[str, ...] = ("{}", "{} for sale", "just arrived: {}", "{}, second hand")

# What a caption calls a style, when it names it (one word or phrase per shift of the covered families).
STYLE_WORDS: dict[str, str] = {
    "gaussian_noise": "grainy", "shot_noise": "grainy", "impulse_noise": "speckled", "speckle_noise": "grainy",
    "gaussian_blur": "blurry", "defocus_blur": "out of focus", "motion_blur": "motion blurred", "zoom_blur": "blurry",
    "brightness": "overexposed",
    "invert": "negative", "edges": "outline drawing", "sketch": "pencil sketch",
    "contrast": "faded", "elastic_transform": "warped", "pixelate": "pixel art", "jpeg_compression": "compressed",
}  # fmt: skip

_NUMBERS = {2: "two", 3: "three", 4: "four"}
_PLURALS = {"dress": "dresses"}  # every other name takes an "s"
# (first, second) item's place, for two items side by side or one above the other.
_SPOTS = {"horizontal": ("on the left", "on the right"), "vertical": ("at the top", "at the bottom")}


def covered_shifts(families: tuple[str, ...] = COVERED_FAMILIES) -> tuple[str, ...]:
    """The shifts of the given families (default: the ones the default corpus covers)."""
    return tuple(name for family in families for name in SHIFT_FAMILIES[family])


def held_out_shifts(families: tuple[str, ...] = COVERED_FAMILIES) -> tuple[str, ...]:
    """The shifts of every family not in ``families``: what a corpus covering ``families`` never shows."""
    return tuple(name for family, names in SHIFT_FAMILIES.items() if family not in families for name in names)


@dataclass(frozen=True)
class CorpusConfig:
    """What a pretraining corpus holds; every default is the ``default`` stand-in's.
    Attributes:
        kind: ``"scenes"`` (captioned scenes, some styled) or ``"task"`` (single clean items; the ablation).
        n_scenes: how many scenes (``"task"``: a seeded subset of that many train items; None: all 60,000).
        families: the shift families scenes may be styled in (``()``: plain scenes only).
        p_styled, p_style_caption, p_positions: the fraction of scenes rendered in a style; the chance that a styled
            scene's caption names its style; the chance that a two-item caption says where each item is.
    """

    kind: Literal["scenes", "task"] = "scenes"
    n_scenes: int | None = 60_000  # as many scenes as the train split has items
    families: tuple[str, ...] = COVERED_FAMILIES
    p_styled: float = 0.5  # half plain, half styled: clean photos stay the most common single style
    p_style_caption: float = 0.5  # alt text mentions how a picture looks only sometimes
    p_positions: float = 0.5
    seed: int = 0

    def __post_init__(self):
        if self.kind not in ("scenes", "task"):
            raise ValueError(f"Expected `kind` to be 'scenes' or 'task', but got {self.kind!r}")
        if self.n_scenes is not None and (isinstance(self.n_scenes, bool) or not isinstance(self.n_scenes, int) or self.n_scenes < 1):
            raise ValueError(f"Expected `n_scenes` to be a positive integer or None, but got {self.n_scenes!r}")
        unknown = [f for f in self.families if f not in SHIFT_FAMILIES]
        if unknown:
            raise ValueError(f"Unknown shift families {unknown} in `families`; known: {', '.join(SHIFT_FAMILIES)}")
        if self.kind == "task" and self.families:
            raise ValueError(f"A task-matched corpus holds clean items only: expected `families=()`, but got {self.families!r}")
        for name in ("p_styled", "p_style_caption", "p_positions"):
            p = getattr(self, name)
            if not (isinstance(p, (int, float)) and 0.0 <= p <= 1.0):
                raise ValueError(f"Expected `{name}` to be a probability in [0, 1], but got {p!r}")

    @property
    def covered_shifts(self) -> tuple[str, ...]:
        """The shifts this corpus may show."""
        return covered_shifts(self.families) if self.kind == "scenes" else ()

    @property
    def held_out_shifts(self) -> tuple[str, ...]:
        """The shifts this corpus never shows."""
        return held_out_shifts(self.families if self.kind == "scenes" else ())


@dataclass(frozen=True)
class Corpus:
    """A generated corpus: images, captions and what each scene holds.
    Attributes:
        images: [N, 1, 28, 28] float32 in [0, 1].
        captions, caption_ids: the K distinct captions; [N] each scene's caption, an index into ``captions``.
        items: [N, 4] the class labels of each scene's items, -1 where a scene has fewer.
        styles, severities: N shift names and [N] their severities ("" and 0 for a plain scene).
    """

    config: CorpusConfig
    images: torch.Tensor
    captions: tuple[str, ...]
    caption_ids: torch.Tensor
    items: torch.Tensor
    styles: tuple[str, ...]
    severities: torch.Tensor

    def __len__(self) -> int:
        return len(self.caption_ids)

    def captions_per_scene(self) -> list[str]:
        """N captions, one per scene."""
        return [self.captions[i] for i in self.caption_ids.tolist()]

    def summary(self) -> dict[str, Any]:
        """What a model card says about the corpus (plain data)."""
        n_items = (self.items >= 0).sum(dim=1)  # [N]
        styled = Counter(s for s in self.styles if s)
        by_family = Counter(family for s in styled.elements() for family, names in SHIFT_FAMILIES.items() if s in names)
        return {
            "kind": self.config.kind, "scenes": len(self), "distinct_captions": len(self.captions),
            "items_per_scene": {int(k): int((n_items == k).sum()) for k in range(1, 5) if (n_items == k).any()},
            "styled_fraction": round(sum(styled.values()) / max(1, len(self)), 4),
            "style_mix": {family: round(count / max(1, len(self)), 4) for family, count in sorted(by_family.items())},
            "covered_families": [f for f in SHIFT_FAMILIES if f in self.config.families] if self.config.kind == "scenes" else [],
            "held_out_families": [f for f in SHIFT_FAMILIES if f not in self.config.families or self.config.kind == "task"],
        }


def _noun(label: int, count: int) -> str:
    """``"a coat"``, ``"an ankle boot"``, ``"two dresses"``."""
    name = FASHION_MNIST_CLASSNAMES[label]
    article = "an" if name[0] in "aeiou" else "a"
    return f"{article} {name}" if count == 1 else f"{_NUMBERS[count]} {_PLURALS.get(name, name + 's')}"


def _items_phrase(labels: list[int]) -> str:
    """The items of a scene, counted and in label order: ``"a t-shirt, two coats and a bag"``."""
    counts = Counter(labels)
    phrases = [_noun(label, counts[label]) for label in sorted(counts)]
    return phrases[0] if len(phrases) == 1 else f"{', '.join(phrases[:-1])} and {phrases[-1]}"


def _paste(canvas: torch.Tensor, items: torch.Tensor, scene: torch.Tensor, size: torch.Tensor, x0: torch.Tensor, y0: torch.Tensor) -> None:
    """Lay item j over ``canvas`` [N, 1, 28, 28] in place, resized to size[j] px at (x0[j], y0[j]) of scene[j]."""
    flat = canvas.view(len(canvas), -1)  # [N, 784]
    for s in size.unique().tolist():
        at = (size == s).nonzero().squeeze(1)  # [M]
        small = F.interpolate(items[at], size=(s, s), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)  # [M, 1, s, s]
        d = torch.arange(s)
        rows = y0[at, None, None] + d[None, :, None]  # [M, s, 1]
        cols = x0[at, None, None] + d[None, None, :]  # [M, 1, s]
        index = (rows * CANVAS + cols).reshape(len(at), -1)  # [M, s*s] flat pixel positions
        target = torch.zeros(len(at), flat.shape[1])  # [M, 784] one row per item, so that two items of one scene both land
        target.scatter_(1, index, small.reshape(len(at), -1))
        flat.scatter_reduce_(0, scene[at, None].expand_as(target), target, "amax")


def _layout(n_items: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each scene's item sizes and top-left corners ([N, 4] each, -1 where no item), and its orientation [N] (True: side by side)."""
    n = len(n_items)
    u = torch.rand(n, 4, 3, generator=gen)  # per slot: size, x and y jitter
    horizontal = torch.rand(n, generator=gen) < 0.5
    quadrants = torch.rand(n, 4, generator=gen).argsort(dim=1)  # a random quadrant per slot
    slot = torch.arange(4)[None, :].expand(n, 4)
    half = CANVAS // 2
    # One item: 16..28 px anywhere.
    s1 = (16 + (u[..., 0] * 13).long()).clamp(max=28)
    cases = [(n_items == 1, s1, ((CANVAS - s1 + 1) * u[..., 1]).long(), ((CANVAS - s1 + 1) * u[..., 2]).long())]
    # Two items: 11..14 px, slot 0 in the left (top) half, slot 1 in the right (bottom) one.
    s2 = (11 + (u[..., 0] * 4).long()).clamp(max=14)
    along = slot * half + ((half - s2 + 1) * u[..., 1]).long()  # position along the split
    across = ((CANVAS - s2 + 1) * u[..., 2]).long()
    h = horizontal[:, None]
    cases.append((n_items == 2, s2, torch.where(h, along, across), torch.where(h, across, along)))
    # Three or four items: 10..14 px, each in its own random quadrant.
    s3 = (10 + (u[..., 0] * 5).long()).clamp(max=14)
    cases.append((n_items >= 3, s3, (quadrants % 2) * half + ((half - s3 + 1) * u[..., 1]).long(),
                  (quadrants // 2) * half + ((half - s3 + 1) * u[..., 2]).long()))
    size = x0 = y0 = torch.full((n, 4), -1)
    for case, s, x, y in cases:
        at = case[:, None] & (slot < n_items[:, None])  # [N, 4] this case's items
        size, x0, y0 = torch.where(at, s, size), torch.where(at, x, x0), torch.where(at, y, y0)
    return size, x0, y0, horizontal


def _task_corpus(config: CorpusConfig, images: torch.Tensor, labels: torch.Tensor, gen: torch.Generator) -> Corpus:
    n = len(labels) if config.n_scenes is None else min(config.n_scenes, len(labels))
    rows = torch.randperm(len(labels), generator=gen)[:n].sort().values if n < len(labels) else torch.arange(n)
    forms = torch.randint(0, len(CAPTION_POOL), (n,), generator=gen)
    texts = [CAPTION_POOL[f].format(FASHION_MNIST_CLASSNAMES[y]) for f, y in zip(forms.tolist(), labels[rows].tolist())]
    captions, caption_ids = _index(texts)
    items = torch.cat([labels[rows, None], torch.full((n, 3), -1)], dim=1)  # [N, 4]
    return Corpus(config, images[rows].clone(), captions, caption_ids, items, ("",) * n, torch.zeros(n, dtype=torch.long))


def _index(texts: list[str]) -> tuple[tuple[str, ...], torch.Tensor]:
    """Distinct texts (sorted) and each text's index among them."""
    captions = tuple(sorted(set(texts)))
    position = {c: i for i, c in enumerate(captions)}
    return captions, torch.tensor([position[t] for t in texts], dtype=torch.long)


def make_corpus(config: CorpusConfig = CorpusConfig(), progress: bool = False) -> Corpus:
    """Build the corpus a config describes from the Fashion-MNIST train split (never the test split); the same config
    gives the same corpus (on one machine)."""
    from tqdm.auto import tqdm
    train = datasets.load_fashion_mnist("train")
    images, labels = train.images_float(), train.labels  # [60000, 1, 28, 28], [60000]
    gen = torch.Generator().manual_seed(config.seed)
    if config.kind == "task":
        return _task_corpus(config, images, labels, gen)
    n = config.n_scenes or len(labels)
    # Every draw, for every scene, in a fixed order (unused draws are still drawn).
    n_items = torch.multinomial(torch.tensor(ITEM_COUNT_PROBS), n, replacement=True, generator=gen) + 1  # [N] in 1..4
    picks = torch.randint(0, len(labels), (n, 4), generator=gen)  # [N, 4] train rows
    size, x0, y0, horizontal = _layout(n_items, gen)
    styled = torch.rand(n, generator=gen) < config.p_styled
    family_u, shift_u = torch.rand(n, generator=gen), torch.rand(n, generator=gen)
    severity = torch.randint(SEVERITIES[0], SEVERITIES[-1] + 1, (n,), generator=gen)
    names_style = torch.rand(n, generator=gen) < config.p_style_caption
    names_spots = torch.rand(n, generator=gen) < config.p_positions
    forms = torch.randint(0, len(SCENE_CAPTION_FORMS), (n,), generator=gen)
    present = size >= 0  # [N, 4]
    scene, slot = present.nonzero(as_tuple=True)  # one row per item
    canvas = torch.zeros(n, 1, CANVAS, CANVAS)
    _paste(canvas, images[picks[scene, slot]], scene, size[scene, slot], x0[scene, slot], y0[scene, slot])
    items = torch.where(present, labels[picks], torch.full_like(picks, -1))  # [N, 4]
    families = config.families
    styles, severities = [""] * n, torch.zeros(n, dtype=torch.long)
    if families:
        groups: dict[tuple[str, int], list[int]] = {}  # (style, severity) -> its scenes, in order
        for i in styled.nonzero().squeeze(1).tolist():
            shifts = SHIFT_FAMILIES[families[int(family_u[i] * len(families))]]
            styles[i] = shifts[int(shift_u[i] * len(shifts))]
            severities[i] = severity[i]
            groups.setdefault((styles[i], int(severity[i])), []).append(i)
        for style, level in tqdm(sorted(groups), desc="styling scenes", disable=not progress, unit="style"):
            at = torch.tensor(groups[(style, level)])
            canvas[at] = apply_shift(canvas[at], style, level, seed=config.seed, indices=at)
    texts = []
    for i in range(n):
        labels_i = items[i, : n_items[i]].tolist()
        if n_items[i] == 2 and names_spots[i]:
            first, second = _SPOTS["horizontal" if horizontal[i] else "vertical"]
            phrase = f"{_noun(labels_i[0], 1)} {first} and {_noun(labels_i[1], 1)} {second}"
        else:
            phrase = _items_phrase(labels_i)
        style = f", {STYLE_WORDS[styles[i]]}" if styles[i] and names_style[i] else ""
        texts.append(SCENE_CAPTION_FORMS[forms[i]].format(phrase) + style)
    captions, caption_ids = _index(texts)
    return Corpus(config, canvas, captions, caption_ids, items, tuple(styles), severities)
