"""The book's reproduction code: one package per paper, and what they share.

- :mod:`vlmcal.papers.es`: ES, "An Empirical Study Into What Matters for Calibrating
  Vision-Language Models" (Tu et al., ICML 2024), claims C1-C6: temperature scaling across shifts,
  label shift, confidence against accuracy, calibration-set size.
- :mod:`vlmcal.papers.ctpt`: C-TPT, "Calibrated Test-Time Prompt Tuning for Vision-Language
  Models via Text Feature Dispersion" (Yoon et al., ICLR 2024), claims C7-C10: TPT and C-TPT runs,
  the prompt sweep of text-feature dispersion.
- :mod:`vlmcal.papers.dor`: DOR, "Understanding and Mitigating Miscalibration in Prompt Tuning
  for Vision-Language Models" (Wang, Li & Wei, ICML 2025), claims C11-C12: Proposition 3.1's
  simulation, prompt learning on base and new classes.
- :mod:`vlmcal.papers.common`: the papers' figures (``paper_values.csv``), the verdict record,
  the rules that combine a claim's tests, the pages' settings helpers and figures.

Each paper package holds its experiments, its settings, its claim functions (``claims``) and
its figures, so a change to one claim touches one folder. Papers import the library, the
stand-ins and ``common``, never each other (``tests/test_architecture.py`` checks it with
import-linter).
"""
