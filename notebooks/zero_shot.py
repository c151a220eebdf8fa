# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Zero-shot classification, step by step
#
# ```{admonition} Backbone
# :class: important
# At its default parameters this page runs vlmcal's offline stand-in backbone `default`: the
# real pretrained sentence encoder all-MiniLM-L6-v2 as a frozen text tower, and a small CNN
# image tower that vlmcal pretrains the way CLIP is: contrastively, on captioned scenes built
# from the Fashion-MNIST training split, with a learned logit scale. Its figures are the
# stand-in's, not CLIP's. Re-run the page with `-p backbone openclip:ViT-B-32:openai`
# (weights on your machine) for CLIP's. Section 8 compares vlmcal's stand-ins (and its
# supervised baseline), whatever the page's backbone.
# ```
#
# ## Overview
# Every claim in this book runs the same pipeline. This page walks through it once, with the
# backbone named in the parameters:
#
# 1. The backbone and its model card.
# 2. What it was pretrained on: the captioned scenes of its corpus, and how the test task differs.
# 3. Prompts: a template and a class name.
# 4. Text features of the prompts, and the image features of the test images.
# 5. Cosine similarity times the logit scale, then softmax: a decision and a confidence.
# 6. How good and how calibrated: accuracy and ECE per class and overall, clean and under shift.
# 7. Where it errs: the confusion matrix, reliability diagrams, and a few test images with
#    their top-3 prompts.
# 8. The stand-in family side by side: what covering a shift in pretraining does.
#
# ## Prerequisites
# None. On first use each stand-in is pretrained (up to two minutes on 2 CPU cores) and
# cached, and each model card is measured on the 10,000 test images (about 20 seconds per
# model); with warm caches the page runs in about a minute.

# %% tags=["parameters"]
backbone = "default"  # a backbone name: default, default-<variant>, openclip:<arch>:<pretrained>
dataset = "fashion-mnist"  # data-set spec: fashion-mnist, cifar10:/path, imagefolder:/path
template = "a photo of a {}."  # the prompt template of Sections 3-5
templates = "ensemble"  # prompts of Sections 6-7: "ensemble" (CLIP's 80), "hard" or "dataset"
shifts = ["gaussian_noise", "gaussian_blur", "contrast", "sketch"]  # shifts shown in Section 6
severity = 3  # their severity (1..5)
n_bins = 15  # ECE bins
n_examples = 6  # test images shown with their top-3 prompts
n_scenes = 18  # pretraining scenes shown in Section 2 (a stand-in backbone only)
family = ["default", "default-wide", "default-short", "default-mlp", "default-plain", "default-task", "supervised"]  # Section 8's models: stand-ins and "supervised" ([] for none)
max_samples = 0  # evaluate on at most this many test images (0: all)
device = ""  # "" picks CUDA when present, else CPU
cache_dir = ""  # "" uses $VLMCAL_CACHE_DIR or ~/.cache/vlmcal

# %% [markdown]
# ## Imports

# %%
import numpy as np
import pandas as pd
import torch
import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from vlmcal import metrics
from vlmcal.standins import cards
from vlmcal.backbones import load_backbone
from vlmcal.papers.common.params import as_list, as_number
from vlmcal.papers.common.figures import (
    plot_confusion_matrix, plot_corpus_samples, plot_reliability_diagram, plot_text_similarity, plot_top_predictions,
)
from vlmcal.papers.es import load_test_data, model_inputs, predict, prompt_templates
from vlmcal.papers.es import ZeroShotSettings
from vlmcal.standins.corpus import CorpusConfig, make_corpus
from vlmcal.data.templates import FASHION_MNIST_CLASSNAMES
from vlmcal.prompting.zeroshot import class_text_features, zero_shot_logits
from vlmcal.pipeline.features import image_features
from vlmcal.papers.common.params import check_injected_parameters

check_injected_parameters(page="zero_shot")  # plain papermill only warns about an unknown -p name

settings = ZeroShotSettings(
    backbone=backbone, dataset=dataset, template=template, templates=templates, shifts=shifts, severity=severity,
    n_bins=n_bins, n_examples=n_examples, max_samples=max_samples, device=device, cache_dir=cache_dir,
)
shifts, severity, n_bins, n_examples, max_samples = (  # the checked values, lists parsed
    settings.shifts, settings.severity, settings.n_bins, settings.n_examples, settings.max_samples)
n_scenes = as_number(n_scenes, "n_scenes", int, minimum=1)
family = as_list(family, "family", str)
model = load_backbone(backbone, device=settings.device, cache_dir=settings.cache_dir)
data = load_test_data(dataset, max_samples=max_samples or None)
class_names = FASHION_MNIST_CLASSNAMES if dataset.startswith("fashion-mnist") else list(data.class_names)
display(Markdown(f"**Backbone on this page:** `{model.name}`; data: `{dataset}` test split, {len(data)} images, {len(class_names)} classes."))

# %% [markdown]
# ## 1. The backbone
# The card records how the backbone was made, and what it scores on the test split as
# measured by `vlmcal.standins.cards` (training never uses the test split). For a stand-in, each shift
# of the table is marked *covered* when its pretraining corpus rendered some scenes in that
# shift, and *held out* when it never did; the lines below the table average each kind.

# %%
display(Markdown(cards.card_markdown(model, cache_dir=settings.cache_dir)))  # how it was trained, then what it scores

# %% [markdown]
# ## 2. What the backbone was pretrained on
# CLIP learns from web captions of pictures of every kind, and is then tested zero-shot on a
# narrower task. vlmcal's stand-ins are pretrained the same way, on a corpus that
# `vlmcal.standins.corpus` builds from the Fashion-MNIST training split: scenes of one to four
# items on a 28x28 canvas, each with an alt-text-like caption naming its items, and a share
# of the scenes rendered in a style (a shift of the book's suite) from the shift families
# the corpus covers. The families it holds out are never shown in pretraining. Below, the
# first scenes of this backbone's corpus, each titled with its caption, with its style
# beneath (plain: no style).

# %%
corpus_config = getattr(getattr(model, "config", None), "corpus", None)  # a stand-in's CorpusConfig
corpus = make_corpus(corpus_config) if isinstance(corpus_config, CorpusConfig) else None
if corpus is None:
    display(Markdown(f"`{model.name}` was not pretrained by vlmcal, so its pretraining corpus is not vlmcal's to show: "
                     "see the model's own card for what it was trained on."))
else:
    shown = min(n_scenes, len(corpus))
    axes = plot_corpus_samples(corpus, n=shown, ncols=6)
    axes.flat[0].figure.suptitle(f"the first {shown} of {len(corpus):,} pretraining scenes of {model.name}", fontsize=9)
    plt.show()
    summary = corpus.summary()
    items = ", ".join(f"{k} item{'s' if k > 1 else ''}: {v:,}" for k, v in summary["items_per_scene"].items())
    mix = ", ".join(f"{fam} {share:.1%}" for fam, share in summary["style_mix"].items()) or "none (every scene plain)"
    display(Markdown("\n".join([
        f"**Corpus of `{model.name}`** ({summary['kind']}): {summary['scenes']:,} scenes ({items}), "
        f"{summary['distinct_captions']:,} distinct captions.",
        "",
        f"- styled scenes: {summary['styled_fraction']:.1%}; share of all scenes per shift family: {mix}",
        f"- families covered: {', '.join(summary['covered_families']) or 'none'} "
        f"(shifts: {', '.join(model.covered_shifts) or 'none'})",
        f"- families held out (never shown): {', '.join(summary['held_out_families']) or 'none'}",
    ])))

# %% [markdown]
# The test task is narrower than the corpus. The test images are single items of the
# Fashion-MNIST test split, one per image and unstyled (until Section 6 applies a shift), fed
# to the backbone through its own preprocessing (`vlmcal.pipeline.predictions.model_inputs`: a stand-in
# takes the 28x28 tensors as they are; an open_clip model gets each image as a PIL image
# through its `preprocess`). The classes are named by evaluation prompts: evaluation
# templates (the hard prompt, CLIP's 80, or the data set's own) filled with a class name,
# none of them one of the corpus's caption forms. The check below
# compares every prompt this page uses with every pretraining caption.

# %%
page_prompts = sorted({t.format(c) for t in [template, *prompt_templates(templates, dataset)] for c in class_names})
if corpus is None:
    display(Markdown(f"This page evaluates with {len(page_prompts)} prompts; `{model.name}`'s pretraining captions are not "
                     "available to compare them with."))
else:
    shared = sorted(set(page_prompts) & set(corpus.captions))
    display(Markdown(
        f"This page evaluates with {len(page_prompts)} prompts ({len(class_names)} classes); "
        + (f"none of them is among the {len(corpus.captions):,} distinct pretraining captions." if not shared else
           f"{len(shared)} of them are also pretraining captions: " + ", ".join(f"'{c}'" for c in shared[:5])
           + (" ..." if len(shared) > 5 else "") + ".")
    ))

# %% [markdown]
# ## 3. Prompts
# A prompt is a template with the class name filled in:

# %%
prompts = [template.format(c) for c in class_names]
prompts

# %% [markdown]
# ## 4. Text and image features
# Both towers map into one space of width $D$, and both outputs are L2-normalised. The
# heat map shows how similar the class text features are to each other (cosine similarity).

# %%
with torch.no_grad():
    text = class_text_features(model, class_names, [template])  # [C, D]
inputs, preprocessing = model_inputs(model, data)  # the test images as this backbone takes them
feats = image_features(model, inputs, {**data.identity, "preprocessing": preprocessing}, cache_dir=settings.cache_dir)
print(f"text features {tuple(text.shape)}, image features {tuple(feats.features.shape)}; "
      f"norms {float(text.norm(dim=1).mean()):.3f} and {float(feats.features.norm(dim=1).mean()):.3f}")
fig, ax = plt.subplots(figsize=(5.2, 4.2))
sim = (text @ text.T).cpu().numpy()  # [C, D] @ [D, C] -> [C, C]
plot_text_similarity(sim, class_names, ax=ax)
ax.set_title("class text features")
fig.tight_layout()

# %% [markdown]
# ## 5. Similarities, logits, softmax
# $\text{logit}_c = s \cdot \langle x, t_c\rangle$ with the logit scale $s$, then
# $p = \operatorname{softmax}(\text{logits})$: the decision is $\arg\max_c p_c$ and the
# confidence is $\max_c p_c$. The scale is learned in pretraining; CLIP's ends at its clamp,
# $s = 100$, where a cosine gap of 0.05 between two classes is a logit gap of 5, a
# probability ratio of $e^5 \approx 148$. The backbone's own scale is printed below.

# %%
logits = zero_shot_logits(feats.features, text.cpu(), model.logit_scale)  # [N, C]
probs = logits.softmax(dim=1)  # [N, C]
confidence, decision = probs.max(dim=1)
print(f"logit scale {model.logit_scale:g}; hard-prompt accuracy {float((decision == feats.labels).float().mean()):.3f}, "
      f"mean confidence {float(confidence.mean()):.3f}")
pd.DataFrame({"true": [class_names[i] for i in feats.labels[:8]], "decision": [class_names[i] for i in decision[:8]],
              "confidence": confidence[:8].numpy().round(3)})

# %% [markdown]
# ## 6. Accuracy and calibration, clean and under shift
# From here on the prompts are the `templates` parameter's (by default CLIP's ensemble of 80
# templates: per-template features normalised, averaged, normalised again). The coverage
# column says whether the backbone's pretraining corpus showed each shift ("unknown" for a
# model vlmcal did not pretrain).

# %%
conditions = [("clean", 0)] + [(s, severity) for s in shifts]
runs = {s: predict(backbone, dataset, s, v, templates=templates, class_names=class_names, max_samples=max_samples or None,
                   device=settings.device, cache_dir=settings.cache_dir) for s, v in conditions}
overall = pd.DataFrame([
    {"condition": s if s == "clean" else f"{s} (severity {severity})",
     "coverage": cards.coverage(model, s),
     "accuracy": metrics.accuracy(r.logits, r.labels, inputs="logits"),
     "mean confidence": metrics.mean_confidence(r.logits, r.labels, inputs="logits"),
     "ECE": metrics.ece(r.logits, r.labels, n_bins=n_bins, inputs="logits")}
    for s, r in runs.items()
]).set_index("condition")
overall.round(3)

# %% [markdown]
# Per class on the clean test set (ECE of the predictions on each class's images):

# %%
clean = runs["clean"]
metrics.per_class_table(clean.logits, clean.labels, class_names, n_bins=n_bins, inputs="logits").round(3)

# %% [markdown]
# ## 7. Where it errs

# %%
fig, ax = plt.subplots(figsize=(6.4, 5.2))
plot_confusion_matrix(metrics.confusion_matrix(clean.logits, clean.labels, inputs="logits"), class_names, ax=ax)
ax.set_title("clean test set, rows: shares of each true class")
fig.tight_layout()

# %%
fig, axes = plt.subplots(1, len(runs), figsize=(3.2 * len(runs), 3.6), sharey=True)
for ax, (s, r) in zip(np.atleast_1d(axes), runs.items()):
    plot_reliability_diagram(metrics.reliability_data(r.logits, r.labels, n_bins=n_bins, inputs="logits"), ax=ax,
                             title=s if s == "clean" else f"{s} ({severity})")
fig.tight_layout()

# %% [markdown]
# A few clean test images, each with the three most probable prompts (green: the true class):

# %%
gen = torch.Generator().manual_seed(0)
pick = torch.randperm(len(clean.labels), generator=gen)[:n_examples]
images = torch.stack([data[int(i)][0] for i in pick])
plot_top_predictions(images, clean.logits[pick].softmax(dim=1), clean.labels[pick], class_names, k=3)
plt.tight_layout()

# %% [markdown]
# ## 8. The family: what covering a shift does
# One row per model of the `family` parameter, each from its card (Section 1): the learned
# logit scale (NaN for the supervised baseline, which has none), clean accuracy and ECE with
# the hard prompt (for the baseline, its own logits), and the means over the card's shifts in
# two groups, the same for every model. The first group holds the shifts of the families the
# `default` corpus covers (noise, blur, weather, rendition); the second, those of the family
# it holds out (digital). Each group's coverage column says what that model's own training
# showed of it.
#
# How to read it. `default`, `default-wide`, `default-short` and `default-mlp` share one
# corpus and differ in the image tower or its training. `default-plain` has the same scenes
# as `default` (items, layouts, caption forms), never styled, so that no caption names a
# style either: the difference between the two rows on the first group is what covering
# those shifts in pretraining does, all else equal. `default-task` is pretrained on the test
# task itself (single clean items captioned by class name), so it differs in breadth as well
# as coverage. The supervised baseline is trained with labels on clean single items. The
# second group is held out by every model: it shows whether what was learned from covered
# styles carries over to shifts that no corpus showed. The sentences below the table are
# computed from it.

# %%
family_models = cards.load_family(family, device=settings.device, cache_dir=settings.cache_dir)
table = cards.family_table(family_models, cache_dir=settings.cache_dir)
if table.empty:
    display(Markdown("The `family` parameter names no models: no table."))
table.round(3)

# %%
if not table.empty:
    display(Markdown(cards.family_comparison(table)))

# %% [markdown]
# ## Summary
# Zero-shot classification is a nearest-prompt rule: each image goes to the class whose
# prompt's feature is most similar, and the softmax of the scaled similarities gives the
# confidence. The logit scale turns small cosine differences into large probability ratios,
# which is why calibration is a question for these models at all. The rest of the book asks
# how well that confidence can be trusted and what changes it. The stand-ins are pretrained on
# a corpus broader than the test task, as CLIP is; which shifts that corpus covered is a
# property of each model, and the cards and the family table report figures on covered and
# held-out shifts separately.
#
# ## References
# - A. Radford et al. "Learning Transferable Visual Models From Natural Language Supervision." ICML 2021 (CLIP, the 80 templates).
# - X. Zhai et al. "LiT: Zero-Shot Transfer with Locked-image text Tuning." CVPR 2022 (training one tower against a locked other).
# - N. Reimers, I. Gurevych. "Sentence-BERT." EMNLP 2019 (the sentence encoder family of all-MiniLM-L6-v2).
# - H. Xiao, K. Rasul, R. Vollgraf. "Fashion-MNIST." 2017.
