"""The ES pages' runs: every model of a page's settings on every condition."""

from __future__ import annotations

from typing import Sequence

from tqdm.auto import tqdm

from vlmcal.pipeline.predictions import predict
from vlmcal.pipeline.runs import Run

__all__ = ["collect_runs"]


def collect_runs(settings, conditions: Sequence[tuple[str, int]] | None = None, progress: bool = True) -> list[Run]:
    """One :class:`~vlmcal.pipeline.runs.Run` per model of ``settings`` (a ``vlmcal.papers.es.StudySettings``) and
    condition, in the order (condition, model).

    Args:
        conditions: (shift, severity) pairs; default ``settings.conditions`` (clean + every shift).
        progress: one progress bar over (model, condition).
    """
    # Conditions outermost: a shifted copy of the data is computed once and used by every model.
    jobs = [(m, s, v) for s, v in (settings.conditions if conditions is None else conditions) for m in settings.models]
    return [predict(model, settings.dataset, shift, severity, templates=settings.templates, progress=False,
                    max_samples=settings.max_samples or None, device=settings.device, cache_dir=settings.cache_dir)
            for model, shift, severity in tqdm(jobs, desc="models x conditions", disable=not progress)]
