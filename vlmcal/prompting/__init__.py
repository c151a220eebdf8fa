"""Prompts to class text features: zero-shot class features and logits (``zeroshot``), the
learnable context of prompt learning (``prompt_learner``), and the text-feature dispersion
that C-TPT and DOR reason about (``dispersion``). Text-feature construction lives in one
function, ``zeroshot.class_text_features``, that zero-shot, TPT and CoOp share.
"""
