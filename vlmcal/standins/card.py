"""The model card of a trained stand-in: its training facts (``vlmcal.standins.cards`` measures its scores)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["ModelCard"]


@dataclass(frozen=True)
class ModelCard:
    """How a stand-in (``kind``: "vlm stand-in" or "supervised") was trained; data, towers and scaling in words.

    Attributes:
        n_params, train_seconds, threads: trainable parameters, wall-clock training seconds and torch threads.
        learned_logit_scale, corpus: a VLM's learned scale and ``Corpus.summary()`` (None for the supervised baseline).
    """

    name: str
    kind: str
    data: str
    architecture: str
    n_params: int
    epochs: int
    batch_size: int
    lr: float
    augmentation: str
    logit_scale: str
    seed: int
    train_seconds: float
    threads: int
    learned_logit_scale: float | None = None
    corpus: dict[str, Any] | None = None

    def to_markdown(self) -> str:
        """The card as a markdown section: a heading and a list of settings."""
        return "\n".join([
            f"### Model card: `{self.name}` ({self.kind})", "",
            f"- data: {self.data}",
            f"- architecture: {self.architecture} ({self.n_params:,} trained parameters)",
            f"- training: {self.epochs} epochs, batch {self.batch_size}, lr {self.lr:g}, augmentation: {self.augmentation}, seed {self.seed}",
            f"- logit scale: {self.logit_scale}",
            f"- training time: {self.train_seconds:.0f} s on {self.threads} CPU thread(s)",
            *self._corpus_lines()])

    def _corpus_lines(self) -> list[str]:
        if not self.corpus:
            return []
        c = self.corpus
        counts = ", ".join(f"{k} item{'s' if int(k) > 1 else ''}: {v:,}" for k, v in c["items_per_scene"].items())
        mix = ", ".join(f"{family} {share:.1%}" for family, share in c["style_mix"].items()) or "none (every scene plain)"
        return [f"- corpus: {c['scenes']:,} scenes ({counts}); {c['distinct_captions']:,} distinct captions",
                f"- styles: {c['styled_fraction']:.1%} of scenes styled; by family: {mix}",
                f"- shift families covered by the corpus: {', '.join(c['covered_families']) or 'none'}; "
                f"held out (never shown): {', '.join(c['held_out_families']) or 'none'}"]

    def _repr_markdown_(self) -> str:
        return self.to_markdown()
