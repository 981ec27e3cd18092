"""Answers to a category's Open311 attributes (`attribute[CODE]`, and `attribute[CODE][]`
repeated for a multivaluelist), checked against the catalogue's definitions."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

from gridline.common.policy.catalogue import Attribute
from gridline.intake.domain.inputs import Open311Error, check_text, parse_date

MAX_STRING = 200
MAX_TEXT = 4000
_KEY = re.compile(r"^attribute\[([^\[\]]*)\](\[\])?$")

Answers = dict[str, str | list[str]]


def form_answers(fields: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """Every `attribute[...]` field of the form by attribute code, with all its values;
    400 for a field that starts like one but is malformed."""
    answers: dict[str, list[str]] = {}
    for key, values in fields.items():
        if not key.startswith("attribute"):
            continue
        match = _KEY.match(key)
        if match is None or not match.group(1):
            shown = check_text("a form field name", key)
            raise Open311Error(
                400,
                f"{shown!r} is not an attribute field: send attribute[CODE] or attribute[CODE][]",
            )
        answers.setdefault(match.group(1), []).extend(values)
    return answers


def check_answers(
    service_code: str, definitions: Sequence[Attribute], given: Mapping[str, Sequence[str]]
) -> Answers:
    """The answers as they go on the report: a string, or a list for a multivaluelist.
    400 naming the attribute for an unknown one, a wrong datatype, a value not in its
    list, or a required one missing."""
    by_code = {a.code: a for a in definitions if a.variable}
    unknown = sorted(code for code in given if code not in by_code)
    if unknown:
        codes = ", ".join(f"attribute[{c}]" for c in unknown)
        known = ", ".join(by_code) or "none"
        raise Open311Error(
            400,
            f"{codes}: not an attribute of service_code {service_code} (its attributes: {known};"
            f" GET services/{service_code}.json defines them)",
        )
    answers: Answers = {}
    for attribute in definitions:
        if not attribute.variable:
            continue
        values = [v.strip() for v in given.get(attribute.code, []) if v.strip()]
        name = f"attribute[{attribute.code}]"
        if not values:
            if attribute.required:
                raise Open311Error(400, f"{name} is required: {attribute.description_en}")
            continue
        for value in values:
            check_text(name, value, multiline=attribute.datatype == "text")
        if attribute.datatype == "multivaluelist":
            answers[attribute.code] = [_listed(name, attribute, v) for v in dict.fromkeys(values)]
            continue
        if len(values) > 1:
            raise Open311Error(400, f"{name} takes one value, got {len(values)}")
        answers[attribute.code] = _single(name, attribute, values[0])
    return answers


def _listed(name: str, attribute: Attribute, value: str) -> str:
    keys = [v.key for v in attribute.values]
    if value not in keys:
        raise Open311Error(400, f"{name} must be one of {', '.join(keys)}; got {value!r}")
    return value


def _single(name: str, attribute: Attribute, value: str) -> str:
    kind = attribute.datatype
    if kind == "singlevaluelist":
        return _listed(name, attribute, value)
    if kind == "number":
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise Open311Error(400, f"{name} must be a number, got {value!r}")
        return value
    if kind == "datetime":
        parse_date(name, value)
        return value
    limit = MAX_TEXT if kind == "text" else MAX_STRING
    if len(value) > limit:
        raise Open311Error(400, f"{name} is longer than {limit} characters")
    return value
