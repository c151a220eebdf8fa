"""Prompts to class text features: zero-shot features and logits (``zeroshot``), learnable context
(``prompt_learner``), and the dispersion and feature divergence of C-TPT and DOR (``dispersion``).
"""
