"""The ES pages' runs: every model of a page's settings on every condition."""

from __future__ import annotations

from typing import Sequence

from tqdm.auto import tqdm

from vlmcal.pipeline.predictions import predict
from vlmcal.pipeline.runs import Run

__all__ = ["collect_runs"]


def collect_runs(settings, conditions: Sequence[tuple[str, int]] | None = None, progress: bool = True) -> list[Run]:
    """Every model of ``settings`` (a ``vlmcal.papers.es.StudySettings``) on every condition.

    Args:
        settings: the study's settings.
        conditions: (shift, severity) pairs; default ``settings.conditions`` (clean + every shift).
        progress: one progress bar over (model, condition).

    Returns:
        One :class:`~vlmcal.pipeline.runs.Run` per (model, condition), in the order (condition, model).
    """
    conditions = list(settings.conditions if conditions is None else conditions)
    # Conditions outermost: a shifted copy of the data is computed once and used by every model.
    jobs = [(m, s, v) for s, v in conditions for m in settings.models]
    return [predict(model, settings.dataset, shift, severity, templates=settings.templates,
                    max_samples=settings.max_samples or None, device=settings.device, cache_dir=settings.cache_dir,
                    progress=False)
            for model, shift, severity in tqdm(jobs, desc="models x conditions", disable=not progress)]
