"""DOR: "Understanding and Mitigating Miscalibration in Prompt Tuning for Vision-Language Models" (Wang, Li & Wei,
ICML 2025), claims C11-C12: Proposition 3.1's simulation (``theory``); CoOp, KgCoOp and DOR in the base-to-new
protocol, cached, with their tables and contrasts (``base_to_new``); the claim functions (``claims``)."""

from vlmcal.papers.common.page_note import backbone_note
from vlmcal.papers.dor import base_to_new, claims, figures, theory
from vlmcal.papers.dor.settings import DORPageSettings

__all__ = ["backbone_note", "base_to_new", "claims", "figures", "theory", "DORPageSettings"]
