"""Tagging: read a report's category, severity and flags off its text with the catalogue.

Every report.submitted carries `ReportTags`. The category comes from the client's
service_code when it sent one; otherwise it is inferred from the text (Chinese or English)
with the catalogue's keywords and category names:

- The text is segmented with jieba (Chinese words; English and digits come out as words
  too). The catalogue's keywords, category names and rule keywords are added to jieba's
  dictionary, so a multi-character keyword (垃圾桶, 独居老人) survives as one word and a
  shorter keyword inside it (垃圾) does not also match. English words match
  case-insensitively, with a plural `s` ignored; a keyword of several words matches the
  same words in a row.
- Each distinct term found adds its weight to the categories it belongs to: a keyword 1.0,
  a category name 1.5, divided by the number of categories sharing that term.
- confidence = best / sum(scores) * best / (best + 0.5): the share the best category has of
  all evidence, damped so that a single weak hit (one keyword, 0.67) stays below two
  (0.8). No hit at all is confidence 0.
- Below the catalogue's `tagging.threshold` the report needs triage; `candidates` lists the
  top `tagging.candidates` categories (the first is the one routing is told).

Severity and flags come from `tagging.rules` whatever the category source: any keyword of
a rule sets its flag and raises severity to the rule's (normal < urgent < critical).
`repeated_complaint` and duplicates need the stored reports: see domain/duplicates.py.

The jieba dictionary is loaded once per process (`warm_up`, at start-up); a `Tagger` is
built once per catalogue (cached by its version hash), so a report costs one segmentation
and dictionary look-ups.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import jieba  # type: ignore[import-untyped]  # no stubs; used through Tokenizer.lcut

from gridline.common.events import ReportTags, Severity
from gridline.common.policy.catalogue import SEVERITY_RANK, Catalogue

KEYWORD_WEIGHT = 1.0
NAME_WEIGHT = 1.5
DAMPING = 0.5
REPEATED_COMPLAINT = "repeated_complaint"
MAX_LABELS = 20
# Keywords are read in the first MAX_TAGGED_CHARS of a text: a 4000-character description
# would cost milliseconds of segmentation on the request path, and what matters is said first.
MAX_TAGGED_CHARS = 1000
_ASCII_WORD = re.compile(r"^[a-z0-9]+$")

_tokenizer: jieba.Tokenizer | None = None
_added: set[str] = set()


def warm_up() -> None:
    """Load jieba's dictionary (about half a second): once per process, at start-up."""
    global _tokenizer
    if _tokenizer is None:
        jieba.setLogLevel(logging.WARNING)
        tokenizer = jieba.Tokenizer()
        tokenizer.initialize()
        _tokenizer = tokenizer


def _segmenter() -> jieba.Tokenizer:
    warm_up()
    assert _tokenizer is not None
    return _tokenizer


def _add_words(words: Iterable[str]) -> None:
    """Catalogue terms into jieba's dictionary, so that segmentation keeps them whole."""
    tokenizer = _segmenter()
    for word in words:
        word = word.strip().lower()
        if word and word not in _added and not word.isascii():
            # A high frequency makes jieba prefer the whole term to its parts.
            tokenizer.add_word(word, freq=100_000)
            _added.add(word)


def _stem(word: str) -> str:
    """An English plural reads as its singular (bins, bin); Chinese is left alone."""
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss") and _ASCII_WORD.match(word):
        return word[:-1]
    return word


def words(text: str) -> list[str]:
    """The text as normalised words: lower case, full-width folded, punctuation dropped."""
    folded = unicodedata.normalize("NFKC", text).lower()
    return [
        _stem(token)
        for token in _segmenter().lcut(folded, HMM=False)
        if any(ch.isalnum() for ch in token)
    ]


@dataclass(frozen=True)
class _Term:
    words: tuple[str, ...]
    # (category code, weight) for category terms; (flag, severity) for rule terms.
    category_weights: tuple[tuple[str, float], ...] = ()
    flag: str | None = None
    severity: Severity | None = None


class Tagger:
    """One catalogue's terms indexed by their first word."""

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        self.settings = catalogue.tagging
        _add_words(
            [
                *(k for c in catalogue.categories for k in (*c.keywords, c.name_zh, c.name_en)),
                *(k for r in catalogue.tagging.rules for k in r.keywords),
            ]
        )
        owners: dict[tuple[str, ...], dict[str, float]] = defaultdict(dict)
        for category in catalogue.categories:
            for term, weight in (
                *((k, KEYWORD_WEIGHT) for k in category.keywords),
                (category.name_zh, NAME_WEIGHT),
                (category.name_en, NAME_WEIGHT),
            ):
                key = tuple(words(term))
                if key:
                    held = owners[key].get(category.code, 0.0)
                    owners[key][category.code] = max(held, weight)
        terms: list[_Term] = [
            _Term(key, tuple((code, w / len(by_code)) for code, w in by_code.items()))
            for key, by_code in owners.items()
        ]
        for rule in catalogue.tagging.rules:
            for keyword in rule.keywords:
                key = tuple(words(keyword))
                if key:
                    terms.append(_Term(key, flag=rule.flag, severity=rule.severity))
        self._by_first: dict[str, list[_Term]] = defaultdict(list)
        for t in terms:
            self._by_first[t.words[0]].append(t)
        self._order = {c.code: i for i, c in enumerate(catalogue.categories)}
        # Most reports name no rule keyword at all: one regex search over the text proves
        # it, and a report with a service_code then needs no segmentation.
        rule_words = sorted(
            {k.strip().lower() for r in catalogue.tagging.rules for k in r.keywords}, key=len
        )
        self._rule_probe = (
            re.compile("|".join(re.escape(k) for k in reversed(rule_words))) if rule_words else None
        )

    def may_flag(self, text: str) -> bool:
        """False only when no rule keyword occurs in the text even as a substring."""
        if self._rule_probe is None:
            return False
        folded = unicodedata.normalize("NFKC", text[:MAX_TAGGED_CHARS]).lower()
        return self._rule_probe.search(folded) is not None

    def found(self, text: str) -> list[_Term]:
        """The distinct terms that occur in `text`."""
        seq = words(text[:MAX_TAGGED_CHARS])
        hits: dict[int, _Term] = {}
        for i, word in enumerate(seq):
            for term in self._by_first.get(word, ()):
                n = len(term.words)
                if n == 1 or tuple(seq[i : i + n]) == term.words:
                    hits[id(term)] = term
        return list(hits.values())

    def scores(self, terms: Sequence[_Term]) -> dict[str, float]:
        scores: dict[str, float] = defaultdict(float)
        for term in terms:
            for code, weight in term.category_weights:
                scores[code] += weight
        return dict(scores)

    def tag(self, text: str, service_code: str | None, labels: Sequence[str] = ()) -> ReportTags:
        if service_code and not self.may_flag(text):
            return ReportTags(category_source="client", labels=clean_labels(labels))
        terms = self.found(text)
        severity: Severity = "normal"
        flags: list[str] = []
        for term in terms:
            if term.flag is None:
                continue
            if term.flag not in flags:
                flags.append(term.flag)
            if term.severity and SEVERITY_RANK[term.severity] > SEVERITY_RANK[severity]:
                severity = term.severity
        common = {"severity": severity, "flags": sorted(flags), "labels": clean_labels(labels)}
        if service_code:
            return ReportTags(category_source="client", **common)
        scores = self.scores(terms)
        ranked = sorted(scores, key=lambda code: (-scores[code], self._order[code]))
        confidence = confidence_of(list(scores.values()))
        return ReportTags(
            category_source="inferred",
            confidence=confidence,
            candidates=ranked[: self.settings.candidates],
            needs_triage=confidence < self.settings.threshold,
            **common,
        )


def confidence_of(scores: Sequence[float]) -> float:
    """best / sum * best / (best + DAMPING); 0 when nothing matched."""
    total = sum(scores)
    if total <= 0:
        return 0.0
    best = max(scores)
    return round(best / total * best / (best + DAMPING), 4)


def clean_labels(labels: Iterable[str]) -> list[str]:
    """The client's free tags: trimmed, blanks and repeats dropped, at most MAX_LABELS."""
    out: list[str] = []
    for label in labels:
        label = label.strip()
        if label and label not in out:
            out.append(label)
    return out[:MAX_LABELS]


_taggers: dict[str, Tagger] = {}


def tagger_for(catalogue: Catalogue) -> Tagger:
    """The catalogue's tagger, built once per catalogue version."""
    tagger = _taggers.get(catalogue.version_hash)
    if tagger is None:
        if len(_taggers) >= 4:  # an old catalogue's tagger is not needed again
            _taggers.pop(next(iter(_taggers)))
        tagger = _taggers[catalogue.version_hash] = Tagger(catalogue)
    return tagger


def tag(
    catalogue: Catalogue, text: str, service_code: str | None, labels: Sequence[str] = ()
) -> ReportTags:
    """The tags of a report. With no service_code the category is inferred: it is
    `candidates[0]` (see `inferred_category`), and `needs_triage` says whether a person
    must confirm it."""
    return tagger_for(catalogue).tag(text, service_code, labels)


def inferred_category(tags: ReportTags) -> str | None:
    """The category routing is told for an inferred report; None when nothing matched (the
    report then needs triage whatever code it is given)."""
    return tags.candidates[0] if tags.candidates else None


def with_flag(tags: ReportTags, flag: str) -> ReportTags:
    if flag in tags.flags:
        return tags
    return tags.model_copy(update={"flags": sorted([*tags.flags, flag])})
