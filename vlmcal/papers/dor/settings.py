"""Settings of the prompt-learning page (C12), checked once from the page's parameters cell."""

from __future__ import annotations

from dataclasses import dataclass

from vlmcal.papers.common.settings import OneBackbone, spec

__all__ = ["DORPageSettings"]


@dataclass(frozen=True)
class DORPageSettings(OneBackbone):
    """Parameters of the prompt-learning page (C12), checked once.

    Attributes:
        backbone: the VLM whose prompt is learned (a stand-in or ``openclip:<arch>:<pretrained>``).
        dataset: a data-set spec with a train and a test split.
        datasets: more such data sets (CoOp's: ``coop:<name>:/root``), each run as ``dataset`` is; the figures and the
            verdict average over all of them, as the paper averages its 11.
        shots, epochs, batch_size: training images per base class, passes over them, and shots per step.
        seeds: one run of every method per seed (it draws the shots, initial context, batch order and outliers).
        pool_size: K, DOR's outlier pool (the best-scoring WordNet nouns).
        n_test: evaluate on a stratified subset of at most this many test images (0: all).
        weights: the regulariser weights of the sensitivity sweep (KgCoOp's w and DOR's lambda).
        n_bins, n_resamples: ECE bins (the DOR code base: 10), and bootstrap resamples behind the intervals.
    """

    backbone: str
    dataset: str
    datasets: tuple[str, ...] = ()
    shots: int = spec(16, minimum=1)
    epochs: int = spec(50, minimum=1)
    batch_size: int = spec(32, minimum=1)
    seeds: tuple[int, ...] = spec((1, 2, 3), nonempty=True)
    pool_size: int = spec(5000, minimum=1)
    n_test: int = spec(0, minimum=0)
    weights: tuple[float, ...] = spec((), minimum=0)
    n_bins: int = spec(10, minimum=1)
    n_resamples: int = spec(1000, minimum=10)
    device: str | None = ""
    cache_dir: str | None = ""

    def check_rules(self) -> None:
        self.refuse_supervised("prompt learning")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"Expected parameter `seeds` to hold each seed once, but got {self.seeds!r}")
