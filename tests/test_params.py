"""Parameters as readers type them: papermill's ``-p`` passes lists as text, ``-y`` as YAML values."""

from __future__ import annotations

import pytest

from vlmcal.study import StudySettings
from vlmcal.study import Calibration101Settings, SetSizeSettings, ZeroShotSettings
from vlmcal.params import as_bool, as_list, as_number
from vlmcal.theory import PropositionSettings


@pytest.mark.parametrize(
    "value, kind, expected",
    [
        ("[2, 1000]", int, (2, 1000)),  # papermill -p n_classes '[2, 1000]'
        ([2, 1000], int, (2, 1000)),  # -y, or the cell's default
        ('["openclip:ViT-B-32:openai"]', str, ("openclip:ViT-B-32:openai",)),
        ("[openclip:ViT-B-32:openai, default]", str, ("openclip:ViT-B-32:openai", "default")),
        ("openclip:ViT-B-32:openai", str, ("openclip:ViT-B-32:openai",)),  # one name, not a list
        ("default", str, ("default",)),
        (3, int, (3,)),
        ("[0.5, 1e-3]", float, (0.5, 0.001)),
        ("[]", int, ()),
    ],
)
def test_as_list_reads_what_readers_type(value, kind, expected):
    assert as_list(value, "p", kind) == expected


@pytest.mark.parametrize("value, kind", [("[1, 2.5]", int), ("[true]", int), ("[a, b]", int), ("[{a: 1}]", str), ("{a: 1}", int)])
def test_as_list_refuses_wrong_elements_naming_the_parameter(value, kind):
    with pytest.raises(ValueError, match=r"parameter `n_classes`.*list of " + kind.__name__ + r"s.*but got " + repr(value).replace("[", r"\[")):
        as_list(value, "n_classes", kind)


def test_as_bool_and_as_number():
    assert as_bool("true", "flag") is True and as_bool("no", "flag") is False and as_bool(False, "flag") is False
    with pytest.raises(ValueError, match="`flag` to be true or false, but got 'maybe'"):
        as_bool("maybe", "flag")
    assert as_number("0.25", "alpha") == 0.25 and as_number(4, "n", int, minimum=1) == 4
    for bad in ("x", float("nan"), 0, True, 2.5):
        with pytest.raises(ValueError, match="`n` to be an integer >= 1"):
            as_number(bad, "n", int, minimum=1)


def test_study_settings_take_yaml_text_lists():
    s = StudySettings(backbones='["openclip:vlmcal-tiny:random"]', supervised="", dataset="fashion-mnist", seeds="[0, 1]",
                      n_bins=15, device="", cache_dir="", shifts="[gaussian_noise]", severities="[1, 5]")
    assert s.backbones == ("openclip:vlmcal-tiny:random",) and s.seeds == (0, 1)
    assert s.shifts == ("gaussian_noise",) and s.severities == (1, 5)
    with pytest.raises(ValueError, match="parameter `seeds`"):
        StudySettings(backbones="default", supervised="", dataset="fashion-mnist", seeds="[zero]", n_bins=15, device="", cache_dir="")


def test_page_settings_parse_and_check():
    p = PropositionSettings(sigmas="[0, 1]", n_classes="[2, 1000]", mus="[0.0]", n_draws=500, seed=0, spreads="[0]", logit_scale=100.0)
    assert p.n_classes == (2, 1000) and p.sigmas == (0.0, 1.0)
    z = ZeroShotSettings(backbone="default", dataset="fashion-mnist", template="a photo of a {}.", templates="hard",
                         shifts="[gaussian_noise, contrast]", severity=3, n_bins=15, n_examples=2, max_samples=0)
    assert z.shifts == ("gaussian_noise", "contrast")
    with pytest.raises(ValueError, match=r"Unknown shifts \['gausian_noise'\] in parameter `shifts`"):
        ZeroShotSettings(backbone="default", dataset="fashion-mnist", template="{}", templates="hard",
                         shifts="[gausian_noise]", severity=3, n_bins=15, n_examples=2, max_samples=0)
    with pytest.raises(ValueError, match="`severity` to be an integer in 1..5, but got 7"):
        ZeroShotSettings(backbone="default", dataset="fashion-mnist", template="{}", templates="hard",
                         shifts=[], severity=7, n_bins=15, n_examples=2, max_samples=0)
    c = Calibration101Settings(n_bins=15, n_resamples=100, seed=0, temperature_grid="[0.5, 4, 10]", backbone="default", templates="hard")
    assert c.temperature_grid == (0.5, 4.0, 10)
    with pytest.raises(ValueError, match="`temperature_grid` to be \\[smallest T > 0"):
        Calibration101Settings(n_bins=15, n_resamples=100, seed=0, temperature_grid="[4, 0.5, 10]", backbone="default", templates="hard")
    assert SetSizeSettings(sizes="[5, 10, all]", n_draws=3).sizes == (5, 10, "all")
    with pytest.raises(ValueError, match="`sizes` to hold integers >= 1 or 'all', but got"):
        SetSizeSettings(sizes="[0, every]", n_draws=3)
    with pytest.raises(ValueError, match="`n_draws` to be an integer >= 2, but got 1"):
        SetSizeSettings(sizes=[5], n_draws=1)
