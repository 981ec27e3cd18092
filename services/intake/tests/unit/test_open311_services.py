"""What Open311's services list says of a category."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gridline.common.policy.catalogue import parse_catalogue
from gridline.intake.entrypoints.open311 import _service_entry

pytestmark = pytest.mark.unit

CATALOGUE = Path(__file__).resolve().parents[4] / "config" / "catalogue.yaml"


def test_keywords_name_each_word_once_as_first_written() -> None:
    doc = yaml.safe_load(CATALOGUE.read_text(encoding="utf-8"))
    first = doc["categories"][0]
    first["keywords"] = [first["name_zh"], "Rubbish", first["name_en"].upper(), "rubbish"]
    category = parse_catalogue(doc).categories[0]
    entry = _service_entry(category, zh=False)
    assert entry["keywords"] == f"{first['name_en']}, {first['name_zh']}, Rubbish"
