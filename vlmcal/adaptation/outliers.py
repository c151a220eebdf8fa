"""The DOR outlier pool (Wang, Li & Wei, ICML 2025): WordNet nouns near the base classes in text-feature space.

Candidates: WordNet 3.0 nouns of at most ``max_words`` words tagged at least ``min_count`` times in SemCor, minus
those overlapping a class; score(w) = (1/C) sum_c cos(f_w, t_c) over L2-normalised ``template`` features; the K best
are the pool. WordNet is read offline with nltk from Debian's ``wordnet-base`` (or ``wordnet_dir`` /
``$VLMCAL_WORDNET_DIR``), copied into the cache with a generated ``lexnames`` (nltk 3.10 needs it).
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from vlmcal.pipeline.atomic import atomic_directory
from vlmcal.pipeline.cache import cache_dir as _cache_dir
from vlmcal.pipeline.cache import cached, content_key, entry_path
from vlmcal.prompting.zeroshot import class_text_features

__all__ = ["WORDNET_ENV", "DEBIAN_WORDNET_DIR", "LEXNAMES", "wordnet_root", "wordnet_reader", "wordnet_nouns",
           "noun_tag_counts", "excluded_words", "is_excluded", "OutlierPoolSettings", "OutlierPool", "outlier_pool"]

WORDNET_ENV = "VLMCAL_WORDNET_DIR"
DEBIAN_WORDNET_DIR = Path("/usr/share/wordnet")  # Debian/Ubuntu package `wordnet-base`

# WordNet 3.0's 45 lexicographer files, by file number (lexnames(5WN)); category 1 noun, 2 verb, 3 adj, 4 adv.
LEXNAMES: tuple[str, ...] = (
    "adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact", "noun.attribute",
    "noun.body", "noun.cognition", "noun.communication", "noun.event", "noun.feeling", "noun.food", "noun.group",
    "noun.location", "noun.motive", "noun.object", "noun.person", "noun.phenomenon", "noun.plant", "noun.possession",
    "noun.process", "noun.quantity", "noun.relation", "noun.shape", "noun.state", "noun.substance", "noun.time",
    "verb.body", "verb.change", "verb.cognition", "verb.communication", "verb.competition", "verb.consumption",
    "verb.contact", "verb.creation", "verb.emotion", "verb.motion", "verb.perception", "verb.possession",
    "verb.social", "verb.stative", "verb.weather", "adj.ppl",
)  # fmt: skip
_CATEGORY = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}
_POS = ("adj", "adv", "noun", "verb")
_REQUIRED = tuple(f"{kind}.{pos}" for kind in ("data", "index") for pos in _POS) + tuple(f"{pos}.exc" for pos in _POS)
_OPTIONAL = ("lexnames", "index.sense", "cntlist.rev")  # copied when the source has them
_NOUN = re.compile(r"[a-z]+(?:[ -][a-z]+)*")  # letters, with single spaces or hyphens between them
_WORD_SPLIT = re.compile(r"[ \-]+")  # the words of a candidate, for overlap with excluded words
_NAME_SPLIT = re.compile(r"[\s/\-]+")  # the words of a class name


def _lexnames_text() -> str:
    """The ``lexnames`` file of WordNet 3.0: ``NN<tab>name<tab>category`` per line."""
    return "".join(f"{i:02d}\t{name}\t{_CATEGORY[name.split('.')[0]]}\n" for i, name in enumerate(LEXNAMES))


def _has_dict_files(folder: Path) -> bool:
    return all((folder / name).is_file() for name in _REQUIRED)


def _source_dir(wordnet_dir: str | os.PathLike | None) -> Path:
    """The folder holding WordNet's dict files: ``wordnet_dir``, ``$VLMCAL_WORDNET_DIR``, or Debian's."""
    given = wordnet_dir if wordnet_dir not in (None, "") else os.environ.get(WORDNET_ENV) or None
    how_to = (f"install it (Debian/Ubuntu: `apt-get install wordnet-base`, which puts the files in "
              f"{DEBIAN_WORDNET_DIR}), or set ${WORDNET_ENV} (or pass `wordnet_dir`) to a folder holding "
              f"WordNet 3.0's dict files (data.noun, index.noun, noun.exc, ...)")
    if given is not None:
        where = "the `wordnet_dir` argument" if wordnet_dir not in (None, "") else f"${WORDNET_ENV}"
        folder = Path(given).expanduser()
        for candidate in (folder, folder / "dict"):  # a WordNet-3.0 tree keeps its files in dict/
            if _has_dict_files(candidate):
                return candidate.resolve()
        missing = [name for name in _REQUIRED if not (folder / name).is_file()]
        raise FileNotFoundError(
            f"Expected WordNet 3.0's dict files in {folder} (from {where}), but "
            f"{'the folder does not exist' if not folder.is_dir() else 'it lacks ' + ', '.join(missing)}; {how_to}")
    if _has_dict_files(DEBIAN_WORDNET_DIR):
        return DEBIAN_WORDNET_DIR.resolve()
    raise FileNotFoundError(f"WordNet 3.0 was not found: looked for its dict files (data.noun, index.noun, ...) in "
                            f"{DEBIAN_WORDNET_DIR}, and ${WORDNET_ENV} is not set; {how_to}")


def wordnet_root(wordnet_dir: str | os.PathLike | None = None, cache_dir: str | os.PathLike | None = None) -> Path:
    """A WordNet root directory nltk can read: the dict files copied into vlmcal's cache, plus ``lexnames``.

    The copy, ``<cache>/wordnet-3.0/<key>`` (key: the source's path, file sizes and times), is made atomically.

    Args:
        wordnet_dir: WordNet 3.0's dict folder, or a tree with it in ``dict/``. Default:
            ``$VLMCAL_WORDNET_DIR``, else ``/usr/share/wordnet`` (Debian's ``wordnet-base``).
        cache_dir: vlmcal's cache directory (default: :func:`vlmcal.pipeline.cache.cache_dir`).
    Example:
        >>> root = wordnet_root()
        >>> (root / "lexnames").read_text().splitlines()[3]
        '03\\tnoun.Tops\\t1'
    """
    source = _source_dir(wordnet_dir)
    present = [name for name in _REQUIRED + _OPTIONAL if (source / name).is_file()]
    files = {name: [(source / name).stat().st_size, (source / name).stat().st_mtime_ns] for name in present}
    key = content_key(source=str(source), files=files, lexnames=hashlib.sha256(_lexnames_text().encode()).hexdigest())
    root = _cache_dir(cache_dir) / "wordnet-3.0" / key
    if _has_dict_files(root) and (root / "lexnames").is_file():
        return root.resolve()
    if root.exists():  # not a complete copy (made by hand?): build it again
        shutil.rmtree(root)
    with atomic_directory(root) as tmp:
        if tmp is not None:
            for name in present:
                shutil.copyfile(source / name, tmp / name)
            if not (tmp / "lexnames").is_file():
                (tmp / "lexnames").write_text(_lexnames_text(), encoding="utf-8")
    return root.resolve()


def _open_reader(source: str, root: str):
    import nltk
    from nltk.corpus.reader.wordnet import NOUN, WordNetCorpusReader
    class WordNet30Reader(WordNetCorpusReader):
        def map_wn(self, version="wordnet"):  # the files under `root`, not nltk's own (maybe absent) WordNet 3.0
            return None

    if root not in nltk.data.path:  # nltk 3.10 reads only below the roots on its data path
        nltk.data.path.append(root)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The multilingual functions are not available")
        reader = WordNet30Reader(root, None)
    version = reader.get_version()
    if version != "3.0":
        raise ValueError(f"Expected WordNet 3.0's dict files in {source}, but their data.adj says WordNet {version}; "
                         f"point ${WORDNET_ENV} at WordNet 3.0 (Debian/Ubuntu: `apt-get install wordnet-base`)")
    reader.synsets("entity", NOUN)  # opens data.noun now, so later reads do not depend on the cached copy
    return reader


def wordnet_reader(wordnet_dir: str | os.PathLike | None = None, *, cache_dir: str | os.PathLike | None = None):
    """nltk's ``WordNetCorpusReader`` of WordNet 3.0, read offline; built once per source folder and process.

    It lacks the multilingual OMW data. ``wordnet_dir``, ``cache_dir``: as for :func:`wordnet_root`.

    Raises:
        ValueError: the files are another WordNet version than 3.0.
    Example:
        >>> wn = wordnet_reader()
        >>> wn.synsets("sneaker", "n")[0].lemma_names()
        ['gym_shoe', 'sneaker', 'tennis_shoe']
    """
    source = str(_source_dir(wordnet_dir))
    if source not in _READERS:
        _READERS[source] = _open_reader(source, str(wordnet_root(source, cache_dir)))
    return _READERS[source]


_READERS: dict[str, Any] = {}  # source folder -> its reader, for this process


@functools.lru_cache(maxsize=None)
def _nouns(source: str) -> tuple[str, ...]:
    names = {name.replace("_", " ").lower() for name in wordnet_reader(source).all_lemma_names(pos="n")}
    return tuple(sorted(name for name in names if _NOUN.fullmatch(name)))


def wordnet_nouns(wordnet_dir: str | os.PathLike | None = None) -> list[str]:
    """Every noun lemma of WordNet 3.0 made of letters, spaces and hyphens: 115,799 of its 117,798.

    Underscores become spaces; lemmas are lower-cased, deduplicated and sorted (a new list on every call).
    ``wordnet_dir``: as for :func:`wordnet_root`.
    Example:
        >>> nouns = wordnet_nouns()
        >>> len(nouns), "tee shirt" in nouns, "t-shirt" in nouns
        (115799, True, True)
    """
    return list(_nouns(str(_source_dir(wordnet_dir))))


def _lemma_names(wn, term: str) -> set[str]:
    """The lemma names (spaces, lower case) of every noun synset of ``term``, and its morphy base forms."""
    synsets = wn.synsets(term.replace(" ", "_"), "n")
    return {lemma.replace("_", " ").lower() for s in synsets for lemma in s.lemma_names()} | _base_forms(wn, term)


def _base_forms(wn, term: str) -> set[str]:
    """Every noun base form morphy finds for ``term`` ("pants": "pants" and "pant"), spaces for underscores."""
    key = term.replace(" ", "_")
    forms = wn._morphy(key, "n") if hasattr(wn, "_morphy") else [wn.morphy(key, "n")]
    return {f.replace("_", " ").lower() for f in forms if f}


def excluded_words(class_names: Sequence[str], wordnet_dir: str | os.PathLike | None = None) -> set[str]:
    """The words (lower case, spaces for underscores) that must never be an outlier of these classes.

    For each lower-cased class name: the name, its '/'-separated parts and its words (split on spaces, '/' and
    '-'), and for each the lemma names of all its WordNet noun synsets and its morphy base forms. ``wordnet_dir``:
    as for :func:`wordnet_root` (also in :func:`is_excluded` and :func:`noun_tag_counts`).

    Raises:
        ValueError: ``class_names`` is not a non-empty list of non-empty strings.
    Example:
        >>> sorted(excluded_words(["Sneaker"]))[:4]
        ['canary', 'fink', 'gym shoe', 'sneak']
    """
    names = _check_names(class_names, "class_names")
    wn = wordnet_reader(wordnet_dir)
    excluded: set[str] = set()
    for name in names:
        full = " ".join(name.lower().split())
        terms = {full} | {p.strip() for p in full.split("/") if p.strip()} | {w for w in _NAME_SPLIT.split(full) if w}
        excluded |= terms.union(*(_lemma_names(wn, term) for term in terms))
    return excluded


def is_excluded(candidate: str, excluded: set[str], wordnet_dir: str | os.PathLike | None = None) -> bool:
    """Whether ``candidate``, one of its words, or a morphy base form of either is in :func:`excluded_words`."""
    return _excluder(excluded, wordnet_reader(wordnet_dir))(candidate)


def _excluder(excluded: set[str], wn):
    @functools.lru_cache(maxsize=None)
    def base(term: str) -> frozenset[str]:
        return frozenset(_base_forms(wn, term))

    def check(candidate: str) -> bool:
        c = candidate.lower()
        words = [w for w in _WORD_SPLIT.split(c) if w]
        return c in excluded or any(w in excluded for w in words) or any(base(t) & excluded for t in [c, *words])

    return check


def _check_names(names: Any, what: str) -> list[str]:
    if (isinstance(names, str) or not hasattr(names, "__len__") or len(names) == 0
            or not all(isinstance(n, str) and n.strip() for n in names)):
        raise ValueError(f"Expected `{what}` to be a non-empty list of non-empty strings, but got {names!r:.200}")
    return list(names)


@dataclass(frozen=True)
class OutlierPoolSettings:
    """How the outlier pool is built.

    Attributes:
        size: K, how many outliers are kept; DOR uses K = 5000 (a secondary source's figure).
        template: the prompt template (one ``{}``) that scores candidates and gives DOR's targets.
        max_words: candidates have at most this many space-separated words.
        min_count: WordNet candidates are the nouns tagged at least this often in SemCor; 0 for
            every noun (1 keeps 11,773 of 115,799). Explicit ``candidates`` are not filtered.
        batch_size: prompts per ``encode_text`` call while encoding the candidates.
    Example:
        >>> OutlierPoolSettings(size=1000).template
        'a photo of a {}.'
    """
    size: int = 5000
    template: str = "a photo of a {}."
    max_words: int = 2
    min_count: int = 1
    batch_size: int = 512

    def __post_init__(self):
        for name in ("size", "max_words", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Expected `{name}` to be an integer >= 1, but got {value!r}")
        if isinstance(self.min_count, bool) or not isinstance(self.min_count, int) or self.min_count < 0:
            raise ValueError(f"Expected `min_count` to be an integer >= 0 (0: every noun), but got {self.min_count!r}")
        if not isinstance(self.template, str) or self.template.count("{}") != 1:
            raise ValueError(f"Expected `template` to be a string with exactly one '{{}}' for the noun "
                             f"(e.g. 'a photo of a {{}}.'), but got {self.template!r}")


@dataclass
class OutlierPool:
    """K outlier labels with their scores and frozen text features, best first.

    Attributes:
        scores: [K] each outlier noun's mean cosine similarity to the base classes' text features.
        text_features: [K, D] L2-normalised frozen features of ``settings.template.format(name)`` (float32, CPU).
    Example:
        >>> pool = outlier_pool(backbone, ["t-shirt", "trouser"], OutlierPoolSettings(size=100))
        >>> idx = pool.sample(16, torch.Generator().manual_seed(0))   # [16], redrawn every step
        >>> targets = pool.text_features[idx]                          # [16, D]
        >>> prompts = [pool.names[i] for i in idx.tolist()]
    """
    names: list[str]
    scores: torch.Tensor
    text_features: torch.Tensor
    settings: OutlierPoolSettings = field(default_factory=OutlierPoolSettings)

    def __post_init__(self):
        k = len(self.names)
        if self.scores.shape != (k,) or self.text_features.ndim != 2 or self.text_features.shape[0] != k:
            raise ValueError(f"Expected `scores` [K] and `text_features` [K, D] for K = {k} names, but got "
                             f"{tuple(self.scores.shape)} and {tuple(self.text_features.shape)}")

    def __len__(self) -> int:
        return len(self.names)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """[n] int64 indices of ``n`` outliers drawn uniformly: without replacement if ``n <= K``, else with.

        ``generator``: a CPU one, or None for torch's global one.
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"Expected `n` to be an integer >= 1, but got {n!r}")
        k = len(self.names)
        return torch.randperm(k, generator=generator)[:n] if n <= k else torch.randint(k, (n,), generator=generator)


@functools.lru_cache(maxsize=None)
def _noun_tag_counts(source: str) -> dict[str, int]:
    counts: Counter[str] = Counter()
    with open(Path(source) / "cntlist.rev", encoding="utf-8") as lines:
        for line in lines:
            sense_key, _, tag_count = line.split()
            lemma, _, lex_sense = sense_key.partition("%")
            if lex_sense.startswith("1:"):  # ss_type 1: a noun sense
                counts[lemma.replace("_", " ").lower()] += int(tag_count)
    return counts


def noun_tag_counts(wordnet_dir: str | os.PathLike | None = None) -> dict[str, int]:
    """How often each noun lemma is tagged in SemCor, summed over its senses (WordNet's ``cntlist.rev``).

    Returns lemma (lower case, spaces for underscores) -> tag count, a new dict on every call.
    """
    source = _source_dir(wordnet_dir)
    if not (source / "cntlist.rev").is_file():
        raise FileNotFoundError(f"WordNet's tag counts {source / 'cntlist.rev'} are missing; reinstall `wordnet-base`, "
                                f"or set `min_count=0` in OutlierPoolSettings to use every noun")
    return dict(_noun_tag_counts(str(source)))


def _candidate_list(candidates: Sequence[str] | None, max_words: int, min_count: int, wordnet_dir) -> list[str]:
    if candidates is None:
        words = wordnet_nouns(wordnet_dir)
        if min_count > 0:
            counts = noun_tag_counts(wordnet_dir)
            words = [w for w in words if counts.get(w, 0) >= min_count]
    else:
        words = list(dict.fromkeys(" ".join(w.lower().split()) for w in _check_names(candidates, "candidates")))
    return [w for w in words if len(w.split(" ")) <= max_words]


def _candidate_features(backbone, words: list[str], settings: OutlierPoolSettings, cache_dir,
                        progress: bool) -> torch.Tensor:
    """[N, D] L2-normalised features of ``template.format(w)`` for the N words: cached, else encoded."""
    identity = {"what": "outlier candidate text features",
                "backbone": getattr(backbone, "cache_identity", backbone.name), "template": settings.template,
                "words": hashlib.sha256("\n".join(words).encode()).hexdigest(), "n_words": len(words)}

    def fits(payload) -> str | None:
        if not isinstance(payload, torch.Tensor) or payload.ndim != 2 or payload.shape[0] != len(words):
            return f"holds {getattr(payload, 'shape', type(payload).__name__)}, not [{len(words)}, D] features"
        return None if torch.isfinite(payload).all() else "holds non-finite features"

    def encode() -> torch.Tensor:
        prompts = [settings.template.format(w) for w in words]
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))  # similar lengths per batch: less padding
        chunks = []
        with torch.no_grad():
            for start in tqdm(range(0, len(order), settings.batch_size), desc="encoding outlier candidates",
                              unit="batch", disable=not progress):
                batch = [prompts[i] for i in order[start:start + settings.batch_size]]
                chunks.append(F.normalize(backbone.encode_text(batch).detach().float().cpu(), dim=-1))  # [B, D]
        return torch.cat(chunks)[torch.argsort(torch.tensor(order))]  # [N, D] in length order -> in that of `words`

    return cached(entry_path("outliers", "candidates", identity, cache_dir), identity, encode, fits)


def outlier_pool(
    backbone,
    class_names: Sequence[str],
    settings: OutlierPoolSettings = OutlierPoolSettings(),
    *,
    candidates: Sequence[str] | None = None,
    wordnet_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> OutlierPool:
    """DOR's outlier pool, best first: the K candidate nouns closest to the base classes, none of them a class.

    Candidates overlapping a class (:func:`is_excluded`) are set aside; the rest are ranked by mean cosine
    similarity to the classes' ``template`` features, and the K best kept (fewer if fewer remain).
    Args:
        backbone: a :class:`~vlmcal.backbones.base.Backbone`; only ``encode_text``, ``name`` or ``cache_identity`` used.
        candidates: the nouns to choose from (lower-cased, deduplicated); default :func:`wordnet_nouns`.
        wordnet_dir, cache_dir: as for :func:`wordnet_root`.
    Raises:
        ValueError: bad ``class_names``, ``candidates`` or ``settings``, or no candidate left.
    Example:
        >>> from vlmcal.backbones import load_backbone
        >>> pool = outlier_pool(load_backbone("default"), ["t-shirt", "trouser", "pullover", "dress", "coat"])
        >>> len(pool), pool.text_features.shape
        (5000, torch.Size([5000, 384]))
    """
    if not isinstance(settings, OutlierPoolSettings):
        raise ValueError(f"Expected `settings` to be an OutlierPoolSettings, but got {type(settings).__name__}")
    class_names = _check_names(class_names, "class_names")
    words = _candidate_list(candidates, settings.max_words, settings.min_count, wordnet_dir)
    if not words:
        raise ValueError(f"Expected candidates of at most `max_words` = {settings.max_words} words, but none has "
                         f"so few; pass shorter `candidates` or raise `max_words`")
    check = _excluder(excluded_words(class_names, wordnet_dir), wordnet_reader(wordnet_dir))
    keep = torch.tensor([not check(w) for w in words], dtype=torch.bool)  # [N]
    if not keep.any():
        raise ValueError(f"Expected some candidates that do not overlap the classes, but all {len(words)} are class "
                         f"names, their words or synonyms; pass more `candidates`")
    features = _candidate_features(backbone, words, settings, cache_dir, progress)  # [N, D]
    with torch.no_grad():
        class_feats = class_text_features(backbone, class_names, settings.template).float().cpu()  # [C, D]
    if class_feats.shape[1] != features.shape[1]:
        raise ValueError(f"Expected class and candidate features of one width, but got {class_feats.shape[1]} and "
                         f"{features.shape[1]}; the cached candidate features belong to another backbone of the "
                         f"same identity")
    scores = (features @ class_feats.T).mean(dim=1)  # [N, D] @ [D, C] -> [N, C] -> [N]
    allowed = keep.nonzero().squeeze(1)  # [M] candidate indices
    chosen = allowed[torch.sort(scores[allowed], descending=True, stable=True).indices[: settings.size]]  # [K]
    return OutlierPool(names=[words[i] for i in chosen.tolist()], scores=scores[chosen].clone(),
                       text_features=features[chosen].clone(), settings=settings)
