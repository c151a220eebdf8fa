"""Prompt templates (``str.format`` strings with one ``{}``) and class names: data only.

``CLIP_TEMPLATES`` are CLIP's 80 ImageNet templates (Radford et al., 2021) from open_clip's
``zero_shot_metadata.OPENAI_IMAGENET_TEMPLATES``; ``CAPTION_POOL``, the stand-ins' pretraining captions, is
disjoint from ``EVALUATION_TEMPLATES``.
"""

from __future__ import annotations

import functools
import importlib.util
import sys

__all__ = ["HARD_PROMPT", "CLIP_TEMPLATES", "FASHION_MNIST_TEMPLATES", "GENERIC_CAPTION_TEMPLATES", "CAPTION_POOL",
           "EVALUATION_TEMPLATES", "FASHION_MNIST_CLASSNAMES", "FASHION_MNIST_ORIGINAL_CLASSNAMES"]

HARD_PROMPT = "a photo of a {}."


@functools.cache
def open_clip_metadata():
    """open_clip's ``zero_shot_metadata`` module (templates, ImageNet class names), without importing open_clip."""
    if "open_clip.zero_shot_metadata" in sys.modules or "open_clip" in sys.modules:
        import open_clip.zero_shot_metadata as metadata
    else:
        package = importlib.util.find_spec("open_clip")  # locates the package; runs none of its code
        if package is None or not package.submodule_search_locations:
            raise ModuleNotFoundError("vlmcal needs open_clip (pip install open_clip_torch) for CLIP's prompt templates")
        spec = importlib.util.spec_from_file_location("_vlmcal_open_clip_zero_shot_metadata",
                                                      f"{package.submodule_search_locations[0]}/zero_shot_metadata.py")
        metadata = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(metadata)  # a data-only file: lists and tuples, no imports
    return metadata


# open_clip keeps them as callables (``lambda c: f"a bad photo of a {c}."``); on "{}" they give format strings.
CLIP_TEMPLATES: list[str] = [template("{}") for template in open_clip_metadata().OPENAI_IMAGENET_TEMPLATES]

FASHION_MNIST_TEMPLATES: list[str] = [
    "a photo of a {}, a type of clothing.", "a photo of a {}, a type of fashion item.", "a grayscale photo of a {}.",
    "a black and white product photo of a {}.", "a low resolution grayscale photo of a {}.",
    "a small photo of a {} on a black background.", "a catalogue photo of a {}.", "a product image of a {}.",
    "a centered photo of a {}.", "a thumbnail of a {}.",
]  # fmt: skip

# The stand-ins' pretraining captions, web alt-text in style; none is an evaluation prompt, even up to case and
# punctuation (checked by the tests), so classifying with those is zero-shot.
GENERIC_CAPTION_TEMPLATES: list[str] = [
    "{}", "{} for sale", "{}, new with tags", "{}, size medium", "{}, worn once", "my favourite {}",
    "the {} i bought yesterday", "vintage {} in good condition", "brand new {}, never used", "our best-selling {}",
    "women's {}", "men's {}", "kids' {}", "a {} from the summer collection", "a {} from the winter collection",
    "detail shot: {}", "flat lay of a {}", "studio shot of a {}", "product shot: {}", "front view of the {}",
    "side view of a {}", "{} on a mannequin", "{} on a hanger", "{} with a price tag",
    "what do you think of this {}?", "look at this {}!", "just got a new {}", "a {} i found at the market",
    "selling my old {}", "here is the {}", "an image showing a {}", "there is a {} in this image.",
    "{}: item of the day", "today's outfit: a {}", "one {}, as shown", "stock image of a {}", "{} (second hand)",
    "{} in stock now", "free shipping on this {}", "a {} like this one",
]  # fmt: skip

# The evaluation prompts: what the pages classify with. Kept apart from pretraining captions.
EVALUATION_TEMPLATES: list[str] = [HARD_PROMPT, *CLIP_TEMPLATES, *FASHION_MNIST_TEMPLATES]
CAPTION_POOL: list[str] = list(dict.fromkeys(GENERIC_CAPTION_TEMPLATES))  # without duplicates, in order

# The labels as the dataset's authors name them (index = label).
FASHION_MNIST_ORIGINAL_CLASSNAMES: list[str] = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]  # fmt: skip

# The same labels as a prompt reads them: "a photo of a t-shirt." rather than "... a T-shirt/top.".
FASHION_MNIST_CLASSNAMES: list[str] = ["t-shirt", "trouser", "pullover", "dress", "coat",
                                       "sandal", "shirt", "sneaker", "bag", "ankle boot"]  # fmt: skip
