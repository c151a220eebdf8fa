"""Parameters as readers type them: papermill's ``-p`` passes lists as text, ``-y`` as YAML values."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, dataclass

import pytest

from vlmcal.papers.es import StudySettings
from vlmcal.papers.es import Calibration101Settings, SetSizeSettings, ZeroShotSettings
from vlmcal.papers.common.params import as_bool, as_list, as_number
from vlmcal.papers.common.settings import PageSettings, spec
from vlmcal.papers.ctpt import TPTPageSettings
from vlmcal.papers.dor import DORPageSettings
from vlmcal.papers.dor.theory import PropositionSettings


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


# The mechanism of vlmcal.papers.common.settings: fields read by their annotations, checked as declared.


def _sizes(value, name):
    """A form no annotation says: integers joined by "+"."""
    return tuple(int(v) for v in str(value).split("+"))


@dataclass(frozen=True)
class Declared(PageSettings):
    name: str
    count: int = spec(3, minimum=1)
    rate: float = spec(0.5, minimum=0, maximum=1)
    flag: bool = False
    mode: str = spec("a", choices=("a", "b"))
    seeds: tuple[int, ...] = spec((0,), nonempty=True)
    weights: tuple[float, ...] = spec((), minimum=0)
    names: tuple[str, ...] = ()
    device: str | None = ""
    sizes: tuple[int, ...] = spec("1", read=_sizes)  # a reader reads the default too

    def check_rules(self) -> None:
        if self.count > 10 and not self.flag:  # a rule over two fields, on their checked values
            raise ValueError(f"Expected `flag` when parameter `count` > 10, but got count={self.count!r}")


def test_declared_fields_are_read_as_papermill_passes_them():
    s = Declared(name="x", count="4", rate="0.25", flag="true", mode="b", seeds="[1, 2]", weights="[0, 1.5]", names="[a, b]",
                 device="cpu", sizes="2+3")
    expected = dict(name="x", count=4, rate=0.25, flag=True, mode="b", seeds=(1, 2), weights=(0.0, 1.5), names=("a", "b"),
                    device="cpu", sizes=(2, 3))
    for field_name, value in expected.items():
        got = getattr(s, field_name)
        assert got == value and type(got) is type(value), field_name
        if isinstance(value, tuple):
            assert [type(v) for v in got] == [type(v) for v in value], field_name


def test_declared_defaults_are_read_too_and_one_value_is_a_list_of_one():
    s = Declared(name="x", seeds=7, count=4.0)
    assert (s.count, s.rate, s.flag, s.mode, s.seeds, s.weights, s.names, s.device, s.sizes) == (4, 0.5, False, "a", (7,), (), (), None, (1,))
    assert type(s.count) is int and type(s.seeds[0]) is int


@pytest.mark.parametrize("empty", ["", None])
def test_empty_means_none_where_declared(empty):
    assert Declared(name="x", device=empty).device is None
    for cls, required in [(StudySettings, dict(backbones=["a"], supervised="", dataset="fashion-mnist", seeds=[0], n_bins=15)),
                          (ZeroShotSettings, dict(backbone="a", dataset="d", template="{}", templates="hard", shifts=[], severity=1,
                                                  n_bins=15, n_examples=0, max_samples=0)),
                          (Calibration101Settings, dict(n_bins=15, n_resamples=10, seed=0, temperature_grid=[1, 2, 3], backbone="a",
                                                        templates="hard")),
                          (TPTPageSettings, dict(backbone="a", dataset="d", shifts=[], severity=1, n_images=0)),
                          (DORPageSettings, dict(backbone="a", dataset="d"))]:
        s = cls(**required, device=empty, cache_dir=empty)
        assert s.device is None and s.cache_dir is None, cls.__name__
        assert cls(**required, device="cpu", cache_dir="/c").device == "cpu", cls.__name__
    assert StudySettings(backbones=["a"], supervised=empty, dataset="d", seeds=[0], n_bins=15, device=empty, cache_dir=empty).models == ["a"]


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(count=0), "Expected parameter `count` to be an integer >= 1, but got 0"),
        (dict(count="2.5"), "Expected parameter `count` to be an integer >= 1, but got '2.5'"),
        (dict(rate=1.5), r"Expected parameter `rate` to be a number in 0\.\.1, but got 1\.5"),
        (dict(rate=float("inf")), "Expected parameter `rate` to be a number in 0..1, but got inf"),
        (dict(flag="maybe"), "Expected parameter `flag` to be true or false, but got 'maybe'"),
        (dict(mode="c"), "Expected parameter `mode` to be one of 'a', 'b', but got 'c'"),
        (dict(name=""), "Expected parameter `name` to be a non-empty string, but got ''"),
        (dict(name=3), "Expected parameter `name` to be a non-empty string, but got 3"),
        (dict(seeds="[]"), r"Expected parameter `seeds` to be a non-empty list, but got '\[\]'"),
        (dict(seeds="[a]"), r"Expected parameter `seeds` to be a list of ints .*but got '\[a\]'"),
        (dict(weights=[1, -2]), "Expected parameter `weights` to be a number >= 0, but got -2.0"),
        (dict(names=["a", ""]), "Expected parameter `names` to be a non-empty string, but got ''"),
        (dict(device=0), r'Expected parameter `device` to be a string \(\"\" for none\), but got 0'),
        (dict(count=11), "Expected `flag` when parameter `count` > 10, but got count=11"),
    ],
)
def test_a_bad_value_names_the_field_what_it_got_and_what_it_accepts(change, message):
    with pytest.raises(ValueError, match=message):
        Declared(**{"name": "x", **change})


def test_checked_settings_stay_frozen_and_an_unreadable_annotation_is_a_type_error():
    with pytest.raises(FrozenInstanceError):
        Declared(name="x").count = 2

    @dataclass(frozen=True)
    class Unreadable(PageSettings):
        grid: tuple[float, float, int] = (1.0, 2.0, 3)

    with pytest.raises(TypeError, match="spec\\(read=...\\)"):
        Unreadable()
