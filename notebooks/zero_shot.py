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
# image tower that vlmcal trains on the Fashion-MNIST training split, contrastively and with
# CLIP's logit scale of 100. Its figures are the stand-in's, not CLIP's. Re-run the page with
# `-p backbone openclip:ViT-B-32:openai` (weights on your machine) for CLIP's.
# ```
#
# ## Overview
# Every claim in this book runs the same pipeline. This page walks through it once, with the
# backbone named in the parameters:
#
# 1. The backbone and its model card.
# 2. Prompts: a template and a class name.
# 3. Text features of the prompts, and the image features of the test images.
# 4. Cosine similarity times the logit scale, then softmax: a decision and a confidence.
# 5. How good and how calibrated: accuracy and ECE per class and overall, clean and under shift.
# 6. Where it errs: the confusion matrix, reliability diagrams, and a few test images with
#    their top-3 prompts.
#
# ## Prerequisites
# None. On first use the stand-in is trained (about a minute on 2 CPU cores) and cached; the
# page then runs in under a minute.

# %% tags=["parameters"]
backbone = "default"  # a backbone name: default, default-<variant>, openclip:<arch>:<pretrained>
dataset = "fashion-mnist"  # data-set spec: fashion-mnist, cifar10:/path, imagefolder:/path
template = "a photo of a {}."  # the prompt template of Sections 2-4
templates = "ensemble"  # prompts of Sections 5-6: "ensemble" (CLIP's 80), "hard" or "dataset"
shifts = ["gaussian_noise", "gaussian_blur", "contrast", "sketch"]  # shifts shown in Section 5
severity = 3  # their severity (1..5)
n_bins = 15  # ECE bins
n_examples = 6  # test images shown with their top-3 prompts
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

from vlmcal import cards, metrics
from vlmcal.backbones import load_backbone
from vlmcal.plotting import plot_confusion_matrix, plot_reliability_diagram, plot_text_similarity, plot_top_predictions
from vlmcal.study import load_test_data, model_inputs, predict
from vlmcal.study import ZeroShotSettings
from vlmcal.data.templates import FASHION_MNIST_CLASSNAMES
from vlmcal.prompting.zeroshot import class_text_features, zero_shot_logits
from vlmcal.features import image_features

settings = ZeroShotSettings(
    backbone=backbone, dataset=dataset, template=template, templates=templates, shifts=shifts, severity=severity,
    n_bins=n_bins, n_examples=n_examples, max_samples=max_samples, device=device, cache_dir=cache_dir,
)
shifts, severity, n_bins, n_examples, max_samples = (  # the checked values, lists parsed
    settings.shifts, settings.severity, settings.n_bins, settings.n_examples, settings.max_samples)
model = load_backbone(backbone, device=device or None, cache_dir=cache_dir or None)
data = load_test_data(dataset, max_samples=max_samples or None)
class_names = FASHION_MNIST_CLASSNAMES if dataset.startswith("fashion-mnist") else list(data.class_names)
display(Markdown(f"**Backbone on this page:** `{model.name}`; data: `{dataset}` test split, {len(data)} images, {len(class_names)} classes."))

# %% [markdown]
# ## 1. The backbone
# The card records how the backbone was made, and what it scores on the test split as
# measured by `vlmcal.cards` (training never uses the test split).

# %%
display(Markdown(cards.card_markdown(model, cache_dir=cache_dir or None)))  # how it was trained, then what it scores

# %% [markdown]
# ## 2. Prompts
# A prompt is a template with the class name filled in:

# %%
prompts = [template.format(c) for c in class_names]
prompts

# %% [markdown]
# ## 3. Text and image features
# Both towers map into one space of width $D$, and both outputs are L2-normalised. The
# heat map shows how similar the class text features are to each other (cosine similarity).

# %%
with torch.no_grad():
    text = class_text_features(model, class_names, [template])  # [C, D]
inputs, preprocessing = model_inputs(model, data)  # the test images as this backbone takes them
feats = image_features(model, inputs, {**data.identity, "preprocessing": preprocessing}, cache_dir=cache_dir or None)
print(f"text features {tuple(text.shape)}, image features {tuple(feats.features.shape)}; "
      f"norms {float(text.norm(dim=1).mean()):.3f} and {float(feats.features.norm(dim=1).mean()):.3f}")
fig, ax = plt.subplots(figsize=(5.2, 4.2))
sim = (text @ text.T).cpu().numpy()  # [C, D] @ [D, C] -> [C, C]
plot_text_similarity(sim, class_names, ax=ax)
ax.set_title("class text features")
fig.tight_layout()

# %% [markdown]
# ## 4. Similarities, logits, softmax
# $\text{logit}_c = s \cdot \langle x, t_c\rangle$ with the logit scale $s$, then
# $p = \operatorname{softmax}(\text{logits})$: the decision is $\arg\max_c p_c$ and the
# confidence is $\max_c p_c$. With $s = 100$ a cosine gap of 0.05 between two classes is a
# logit gap of 5, a probability ratio of $e^5 \approx 148$.

# %%
logits = zero_shot_logits(feats.features, text.cpu(), model.logit_scale)  # [N, C]
probs = logits.softmax(dim=1)  # [N, C]
confidence, decision = probs.max(dim=1)
print(f"logit scale {model.logit_scale:g}; hard-prompt accuracy {float((decision == feats.labels).float().mean()):.3f}, "
      f"mean confidence {float(confidence.mean()):.3f}")
pd.DataFrame({"true": [class_names[i] for i in feats.labels[:8]], "decision": [class_names[i] for i in decision[:8]],
              "confidence": confidence[:8].numpy().round(3)})

# %% [markdown]
# ## 5. Accuracy and calibration, clean and under shift
# From here on the prompts are the `templates` parameter's (by default CLIP's ensemble of 80
# templates: per-template features normalised, averaged, normalised again).

# %%
conditions = [("clean", 0)] + [(s, severity) for s in shifts]
runs = {s: predict(backbone, dataset, s, v, templates=templates, class_names=class_names, max_samples=max_samples or None,
                   device=device or None, cache_dir=cache_dir or None) for s, v in conditions}
overall = pd.DataFrame([
    {"condition": s if s == "clean" else f"{s} (severity {severity})",
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
# ## 6. Where it errs

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
# ## Summary
# Zero-shot classification is a nearest-prompt rule: each image goes to the class whose
# prompt's feature is most similar, and the softmax of the scaled similarities gives the
# confidence. The logit scale turns small cosine differences into large probability ratios,
# which is why calibration is a question for these models at all. The rest of the book asks
# how well that confidence can be trusted and what changes it.
#
# ## References
# - A. Radford et al. "Learning Transferable Visual Models From Natural Language Supervision." ICML 2021 (CLIP, the 80 templates).
# - X. Zhai et al. "LiT: Zero-Shot Transfer with Locked-image text Tuning." CVPR 2022 (training one tower against a locked other).
# - N. Reimers, I. Gurevych. "Sentence-BERT." EMNLP 2019 (the sentence encoder family of all-MiniLM-L6-v2).
# - H. Xiao, K. Rasul, R. Vollgraf. "Fashion-MNIST." 2017.
