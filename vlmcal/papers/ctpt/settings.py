"""Settings of the two C-TPT pages (C7-C10), checked once from the page's parameters cell."""

from __future__ import annotations

from dataclasses import dataclass

from vlmcal.papers.common.settings import SEVERITY_RANGE, OneBackbone, known_shifts, shift_conditions, spec
from vlmcal.pipeline.runs import is_dataset_shift

__all__ = ["TPTPageSettings"]


@dataclass(frozen=True)
class TPTPageSettings(OneBackbone):
    """Parameters of the two C-TPT pages (C7–C10), checked once; see their parameters cells.

    Attributes:
        backbone, dataset: the VLM backbone tuned at test time (a stand-in or ``openclip:<arch>:<pretrained>``), a
            data-set spec.
        fine_grained: more sets beside ``dataset`` on the clean side (Table 1's fine-grained sets), as data-set specs
            (``coop:oxford_pets:/data``).
        shifts, severity: the shifted sets (Table 2's): names from ``vlmcal.data.shifts``, each at severity 1..5, or
            data-set specs (``imagenet-a:/data/imagenet-a``; see ``vlmcal.papers.common.settings.known_shifts``).
        n_images: evaluation images per set, a stratified subset (0: every image not used for calibration).
        n_calibration: labelled clean test images, disjoint from those, to fit TPT + TS's temperature on.
        ensemble: the phrases of the ensemble initialisation (each as many tokens as the hard prompt's context).
        lambda_clean, lambda_shifted: C-TPT's lambda on the clean set (paper: 50) and on the shifted sets (20).
        lambdas: the lambda sweep on the clean set.
        others: also run O-TPT and ZERO on the tables page's sets.
        otpt_lambda_clean, otpt_lambda_shifted: O-TPT's lambda on the clean set and on the shifted sets (its code's
            scripts: 18 for fine-grained sets, 2 for natural shifts).
        zero_gamma: the share of views ZERO keeps (its code: 0.3).
        augmix: AugMix on the augmented views (the reference's setting for fine-grained sets).
        n_bins, n_resamples: ECE bins (C-TPT: 20); bootstrap resamples behind the verdicts' intervals.
        batch_size, seed: images tuned at once; seed of the image subsets.
        window: the accuracy window below the best prompt (C8; the paper: 3 points, 0.03).
        n_prompts: how many of the prompts within the window TPT starts from (C8).
        device, cache_dir: as on every page; "" is read as None (pick the device; the default cache).
    """

    backbone: str
    dataset: str
    shifts: tuple[str, ...]
    severity: int = spec(**SEVERITY_RANGE)
    n_images: int = spec(minimum=0)
    n_calibration: int = spec(0, minimum=0)
    ensemble: tuple[str, ...] = ()
    fine_grained: tuple[str, ...] = ()
    lambda_clean: float = spec(50.0, minimum=0)
    lambda_shifted: float = spec(20.0, minimum=0)
    lambdas: tuple[float, ...] = spec((), minimum=0)
    others: bool = False
    otpt_lambda_clean: float = spec(18.0, minimum=0)
    otpt_lambda_shifted: float = spec(2.0, minimum=0)
    zero_gamma: float = spec(0.3, minimum=0.01, maximum=1)
    augmix: bool = False
    n_bins: int = spec(20, minimum=1)
    n_resamples: int = spec(1000, minimum=10)
    batch_size: int = spec(16, minimum=1)
    seed: int = 0
    window: float = spec(0.03, minimum=0)
    n_prompts: int = spec(6, minimum=0)
    device: str | None = ""
    cache_dir: str | None = ""

    def check_rules(self) -> None:
        self.refuse_supervised("TPT")
        self._set(shifts=known_shifts(self.shifts, dataset=self.dataset))
        if not all(is_dataset_shift(name) for name in known_shifts(self.fine_grained)):
            raise ValueError(f"Expected parameter `fine_grained` to hold data-set specs such as 'coop:dtd:/data', but got "
                             f"{list(self.fine_grained)}")
        if self.window > 1:
            raise ValueError(f"Expected parameter `window` to be a fraction of accuracy in [0, 1] (3 points: 0.03), "
                             f"but got {self.window!r}")

    @property
    def conditions(self) -> list[tuple[str, int]]:
        """``("clean", 0)``, each fine-grained set, then each shift at the severity (``shift_conditions``)."""
        return [("clean", 0)] + [(s, 0) for s in self.fine_grained] + shift_conditions(self.shifts, [self.severity])[1:]

    def side(self, shift: str) -> str:
        """``"clean"`` for the clean set and the fine-grained sets (Table 1), else ``"shifted"`` (Table 2)."""
        return "clean" if shift == "clean" or shift in self.fine_grained else "shifted"
