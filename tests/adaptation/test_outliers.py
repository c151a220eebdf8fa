"""The DOR outlier pool: WordNet read offline, class words excluded, scores, cache, sampling."""

from __future__ import annotations

import gzip
import os
import random
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("nltk")

from fakes import HashTextBackbone  # noqa: E402

from vlmcal.data.templates import FASHION_MNIST_CLASSNAMES, FASHION_MNIST_ORIGINAL_CLASSNAMES  # noqa: E402
from vlmcal.adaptation import outliers  # noqa: E402
from vlmcal.adaptation.outliers import (  # noqa: E402
    LEXNAMES, OutlierPool, OutlierPoolSettings, excluded_words, outlier_pool, wordnet_nouns, wordnet_root,
)

HAVE_WORDNET = bool(os.environ.get(outliers.WORDNET_ENV)) or (outliers.DEBIAN_WORDNET_DIR / "data.noun").is_file()
needs_wordnet = pytest.mark.skipif(not HAVE_WORDNET, reason="WordNet 3.0 not installed (apt-get install wordnet-base)")

# What must never be an outlier, written out by hand from WordNet 3.0 (not by the code under test):
# the name, its parts and words, synonyms in any noun sense, and nouns containing one of those words.
MUST_BE_ABSENT = {
    "t-shirt": ["t-shirt", "tee shirt", "jersey", "shirt", "dress shirt", "sport shirt"],
    "T-shirt/top": ["t-shirt", "tee shirt", "jersey", "shirt", "top", "tank top", "big top", "spinning top", "summit"],
    "trouser": ["trouser", "pant", "pants", "long trousers"],
    "pullover": ["pullover", "slipover"],
    "dress": ["dress", "frock", "attire", "clothes", "apparel", "wedding dress", "full dress"],
    "coat": ["coat", "coating", "pelage", "lab coat", "fur coat"],
    "sandal": ["sandal"],
    "shirt": ["shirt", "dress shirt"],
    "sneaker": ["sneaker", "gym shoe", "tennis shoe", "snitch"],
    "bag": ["bag", "handbag", "purse", "pocketbook", "suitcase", "paper bag"],
    "ankle boot": ["ankle boot", "ankle", "boot", "hip boot", "wellington boot", "ankle joint"],
}
# Near the classes but no class, synonym or overlap: these must stay candidates.
MAY_STAY = ["sweater", "jacket", "overcoat", "skirt", "blouse", "shoe", "sock", "glove", "dog", "volcano"]


@pytest.fixture(autouse=True)
def _tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VLMCAL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


class CountingBackbone(HashTextBackbone):
    """The hash backbone, counting the prompts it encodes."""

    def __init__(self, dim: int = 8):
        super().__init__(dim=dim)
        self.encoded: list[str] = []

    def encode_text(self, prompts):
        self.encoded.extend(prompts)
        return super().encode_text(prompts)


def _candidates(seed: int = 0, n_random: int = 300) -> list[str]:
    """The hand-listed words, every noun containing a class word, and some random nouns."""
    nouns = wordnet_nouns()
    stems = ("shirt", "coat", "dress", "boot", "bag", "sandal", "sneaker", "trouser", "pullover", "ankle")
    near = [w for w in nouns if any(s in w for s in stems)]
    listed = [w for words in MUST_BE_ABSENT.values() for w in words] + MAY_STAY
    chosen = set(near) | set(listed) | set(random.Random(seed).sample(nouns, n_random))
    return sorted(w for w in chosen if w.count(" ") < 2)  # the default `max_words` keeps two words at most


@needs_wordnet
def test_generated_root_reads_with_nltk(tmp_path):
    root = wordnet_root(cache_dir=tmp_path)
    lines = (root / "lexnames").read_text().splitlines()
    assert len(lines) == 45 and lines[0] == "00\tadj.all\t3" and lines[3] == "03\tnoun.Tops\t1" and lines[44] == "44\tadj.ppl\t3"
    assert all(not p.is_symlink() and p.is_file() for p in root.iterdir())  # nltk 3.10 refuses links
    assert not [p for p in root.parent.iterdir() if p.name.startswith(".")]  # no temporary copy left
    stamp = (root / "data.noun").stat().st_mtime_ns
    assert wordnet_root(cache_dir=tmp_path) == root and (root / "data.noun").stat().st_mtime_ns == stamp  # built once

    nouns = wordnet_nouns()
    assert {"dog", "coat", "tee shirt", "t-shirt", "gym shoe"} <= set(nouns)
    assert not [w for w in nouns if re.search(r"[\d_.']", w) or w != w.lower()]
    assert nouns == sorted(set(nouns))
    assert 100_000 < len(nouns) < 120_000  # WordNet 3.0 has 117,798 noun lemmas


def test_lexnames_match_the_man_page():
    page = Path("/usr/share/man/man5/lexnames.5WN.gz")
    if not page.is_file():
        pytest.skip("the WordNet man pages are not installed")
    rows = re.findall(r"^(\d\d)\t(\S+)", gzip.open(page, "rt").read(), re.M)
    assert [name for _, name in rows] == list(LEXNAMES)
    assert [int(n) for n, _ in rows] == list(range(45))


@needs_wordnet
def test_env_var_names_the_source(tmp_path, monkeypatch):
    # A WordNet-3.0 tree with its files in dict/, and symlinks there: the copy holds regular files.
    tree = tmp_path / "WordNet-3.0"
    (tree / "dict").mkdir(parents=True)
    for f in outliers.DEBIAN_WORDNET_DIR.iterdir():
        if f.is_file():
            (tree / "dict" / f.name).symlink_to(f)
    monkeypatch.setenv(outliers.WORDNET_ENV, str(tree))
    root = wordnet_root(cache_dir=tmp_path / "c")
    assert root != wordnet_root(outliers.DEBIAN_WORDNET_DIR, cache_dir=tmp_path / "c")  # one copy per source
    assert not (root / "data.noun").is_symlink()
    assert (root / "data.noun").read_bytes() == (outliers.DEBIAN_WORDNET_DIR / "data.noun").read_bytes()


def test_missing_wordnet_raises_with_what_to_do(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match=r"VLMCAL_WORDNET_DIR.*|does not exist") as info:
        wordnet_nouns(tmp_path / "nowhere")
    assert "VLMCAL_WORDNET_DIR" in str(info.value) and "wordnet-base" in str(info.value)

    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "data.noun").write_text("")
    monkeypatch.setenv(outliers.WORDNET_ENV, str(tmp_path / "half"))
    with pytest.raises(FileNotFoundError, match=r"\$VLMCAL_WORDNET_DIR.*index\.noun"):
        wordnet_root()

    monkeypatch.delenv(outliers.WORDNET_ENV)
    monkeypatch.setattr(outliers, "DEBIAN_WORDNET_DIR", tmp_path / "not-installed")
    with pytest.raises(FileNotFoundError, match=r"not-installed.*VLMCAL_WORDNET_DIR") as info:
        excluded_words(["coat"])
    assert "apt-get install wordnet-base" in str(info.value)


@needs_wordnet
@pytest.mark.parametrize("class_names", [FASHION_MNIST_CLASSNAMES, FASHION_MNIST_ORIGINAL_CLASSNAMES], ids=["prompt", "original"])
def test_pool_never_holds_a_class_word(class_names, tmp_path):
    candidates = _candidates()
    absent = {w for c in class_names for w in MUST_BE_ABSENT[c if c in MUST_BE_ABSENT else c.lower()]}
    assert absent <= set(candidates)  # else the check below would hold vacuously
    pool = outlier_pool(HashTextBackbone(), class_names, OutlierPoolSettings(size=len(candidates)),
                        candidates=candidates, cache_dir=tmp_path, progress=False)
    names = set(pool.names)
    assert not names & absent, sorted(names & absent)
    assert set(MAY_STAY) <= names  # near misses are outliers, not exclusions
    # Every class word, alone or inside a longer noun, is gone; spelled by hand from the names.
    for c in class_names:
        for word in re.split(r"[ /-]+", c.lower()):
            assert not [n for n in names if word in re.split(r"[ -]+", n)], word
    # Everything else stays (K >= candidates): the exclusion is no wider than the rule.
    excluded, wn = excluded_words(class_names), outliers.wordnet_reader()

    def bases(term: str) -> set[str]:  # every noun base form ("pants": "pants", "pant")
        return {f.replace("_", " ") for f in wn._morphy(term.replace(" ", "_"), "n")}

    def terms(w: str) -> list[str]:
        return [w, *re.split(r"[ -]+", w)]

    overlapping = {w for w in candidates if any(t in excluded or bases(t) & excluded for t in terms(w))}
    assert [w for w in overlapping if not any(t in excluded for t in terms(w))]  # the base-form rule is exercised
    assert names == set(candidates) - overlapping
    assert len(overlapping) > 100


@needs_wordnet
def test_excluded_words_examples():
    shirt = excluded_words(["T-shirt/top"])
    assert {"t-shirt", "tee shirt", "top", "shirt", "t-shirt/top"} <= shirt
    assert {"sneaker", "gym shoe", "tennis shoe"} <= excluded_words(["Sneaker"])
    assert {"ankle boot", "ankle", "boot"} <= excluded_words(["Ankle boot"])
    assert "trouser" in excluded_words(["Trousers"])  # morphy's base form
    assert "sweater" not in excluded_words(FASHION_MNIST_CLASSNAMES)
    with pytest.raises(ValueError, match="class_names"):
        excluded_words("coat")


@needs_wordnet
def test_scores_are_sorted_mean_cosines(tmp_path):
    bb = HashTextBackbone(dim=8)
    classes = ["t-shirt", "trouser", "pullover", "dress", "coat"]
    candidates = _candidates(seed=1)
    settings = OutlierPoolSettings(size=40, template="a picture of a {}.")
    pool = outlier_pool(bb, classes, settings, candidates=candidates, cache_dir=tmp_path, progress=False)
    assert len(pool) == 40 and pool.text_features.shape == (40, 8)
    assert torch.all(pool.scores[:-1] >= pool.scores[1:])

    text = F.normalize(bb.encode_text([settings.template.format(c) for c in classes]), dim=-1)  # [C, D]
    for i in (0, 17, 39):
        feat = F.normalize(bb.encode_text([settings.template.format(pool.names[i])]), dim=-1)  # [1, D]
        assert float((feat @ text.T).mean()) == pytest.approx(float(pool.scores[i]), abs=1e-5)  # [1, D] @ [D, C]
        assert torch.allclose(pool.text_features[i], feat[0], atol=1e-6)

    # The kept are the best: every other allowed candidate scores at most the K-th.
    everyone = outlier_pool(bb, classes, OutlierPoolSettings(size=10**6, template=settings.template),
                            candidates=candidates, cache_dir=tmp_path, progress=False)
    assert everyone.names[:40] == pool.names
    assert float(everyone.scores[40]) <= float(pool.scores[-1])


@needs_wordnet
def test_second_call_reads_the_cache(tmp_path):
    candidates = _candidates(seed=2, n_random=100)
    bb = CountingBackbone()
    settings = OutlierPoolSettings(size=20, batch_size=64)
    first = outlier_pool(bb, ["coat", "dress"], settings, candidates=candidates, cache_dir=tmp_path, progress=False)
    assert len(bb.encoded) == len(candidates) + 2  # every candidate once, then the two classes
    assert len(list((tmp_path / "outliers").glob("*.pt"))) == 1

    bb.encoded.clear()
    again = outlier_pool(bb, ["coat", "dress"], settings, candidates=candidates, cache_dir=tmp_path, progress=False)
    assert bb.encoded == ["a photo of a coat.", "a photo of a dress."]  # only the class prompts
    assert again.names == first.names and torch.equal(again.text_features, first.text_features)

    bb.encoded.clear()  # another class list reuses the same candidate features
    outlier_pool(bb, ["sandal", "bag", "sneaker"], settings, candidates=candidates, cache_dir=tmp_path, progress=False)
    assert len(bb.encoded) == 3

    bb.encoded.clear()  # another template does not
    outlier_pool(bb, ["coat"], OutlierPoolSettings(size=20, template="a {} on a model."), candidates=candidates,
                 cache_dir=tmp_path, progress=False)
    assert len(bb.encoded) == len(candidates) + 1


@needs_wordnet
def test_max_words_limits_candidates(tmp_path):
    pool = outlier_pool(HashTextBackbone(), ["coat"], OutlierPoolSettings(size=10**6, max_words=1),
                        candidates=_candidates(seed=3), cache_dir=tmp_path, progress=False)
    assert len(pool) > 50 and not [n for n in pool.names if " " in n]


def _toy_pool(k: int = 10) -> OutlierPool:
    return OutlierPool(names=[f"w{i}" for i in range(k)], scores=torch.linspace(1, 0, k), text_features=torch.eye(k))


def test_sample_draws_without_replacement_reproducibly():
    pool = _toy_pool(10)
    draws = [pool.sample(7, torch.Generator().manual_seed(s)) for s in (0, 0, 1)]
    assert all(d.dtype == torch.int64 and d.shape == (7,) for d in draws)
    assert all(len(set(d.tolist())) == 7 and 0 <= int(d.min()) and int(d.max()) < 10 for d in draws)
    assert torch.equal(draws[0], draws[1])
    assert not torch.equal(draws[0], draws[2])
    assert sorted(pool.sample(10, torch.Generator().manual_seed(3)).tolist()) == list(range(10))  # n = K: a permutation
    many = pool.sample(25, torch.Generator().manual_seed(0))  # n > K: with replacement
    assert many.shape == (25,) and int(many.max()) < 10 and len(set(many.tolist())) < 25
    # Redrawn every step: successive draws from one generator differ.
    g = torch.Generator().manual_seed(0)
    assert len({tuple(pool.sample(3, g).tolist()) for _ in range(20)}) > 1


@pytest.mark.parametrize("n", [0, -1, 2.0, True, "3"])
def test_sample_rejects_bad_n(n):
    with pytest.raises(ValueError, match="Expected `n` to be an integer >= 1"):
        _toy_pool().sample(n, torch.Generator())


@pytest.mark.parametrize(
    "kwargs, field",
    [({"size": 0}, "size"), ({"size": True}, "size"), ({"size": "5000"}, "size"), ({"max_words": 0}, "max_words"),
     ({"batch_size": -1}, "batch_size"), ({"template": "a photo"}, "template"), ({"template": "{} and {}"}, "template")],
)
def test_bad_settings(kwargs, field):
    with pytest.raises(ValueError, match=f"`{field}`"):
        OutlierPoolSettings(**kwargs)


def test_bad_pool_arguments():
    with pytest.raises(ValueError, match="class_names"):
        outlier_pool(HashTextBackbone(), [], candidates=["dog"])
    with pytest.raises(ValueError, match="candidates"):
        outlier_pool(HashTextBackbone(), ["coat"], candidates="dog")
    with pytest.raises(ValueError, match="settings"):
        outlier_pool(HashTextBackbone(), ["coat"], {"size": 5}, candidates=["dog"])
    with pytest.raises(ValueError, match=r"\[K\] and `text_features` \[K, D\]"):
        OutlierPool(names=["a", "b"], scores=torch.zeros(3), text_features=torch.zeros(2, 4))


@needs_wordnet
def test_tag_counts_agree_with_nltk_and_filter_the_default_candidates():
    counts = outliers.noun_tag_counts()
    wn = outliers.wordnet_reader()
    for word in ("coat", "dog", "shirt", "velleity", "garment", "tee shirt"):
        by_nltk = sum(lemma.count() for synset in wn.synsets(word.replace(" ", "_"), "n") for lemma in synset.lemmas()
                      if lemma.name().replace("_", " ").lower() == word)
        assert counts.get(word, 0) == by_nltk, word
    assert counts["dog"] > 0 and counts.get("velleity", 0) == 0
    default = outliers._candidate_list(None, 2, 1, None)
    every = outliers._candidate_list(None, 2, 0, None)
    assert "dog" in default and "velleity" not in default and "velleity" in every
    assert set(default) <= set(every) and all(counts.get(w, 0) >= 1 for w in default)
    assert outliers._candidate_list(["velleity", "dog"], 2, 1, None) == ["velleity", "dog"]  # explicit candidates stay
    with pytest.raises(ValueError, match="min_count"):
        OutlierPoolSettings(min_count=-1)
