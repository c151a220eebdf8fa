"""The book's reproduction code: one package per paper, and what they share (``common``).

:mod:`vlmcal.papers.es`: ES (Tu et al., ICML 2024), claims C1-C6; :mod:`vlmcal.papers.ctpt`: C-TPT (Yoon et al.,
ICLR 2024), claims C7-C10; :mod:`vlmcal.papers.dor`: DOR (Wang, Li & Wei, ICML 2025), claims C11-C12;
:mod:`vlmcal.papers.common`: figures, verdicts, rules, plots. Papers never import each other.
"""
