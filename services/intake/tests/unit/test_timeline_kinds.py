"""The kinds of timeline entry agree everywhere: the domain's list, the table's CHECK (the
latest migration that sets it) and the entries the domain builds for every work-order move."""

from __future__ import annotations

import re
from importlib import resources

import pytest

from gridline.intake.domain.timeline import KINDS

pytestmark = pytest.mark.unit


def test_the_tables_check_allows_exactly_the_domains_kinds() -> None:
    migrations = resources.files("gridline.intake").joinpath("migrations")
    checks = [
        (path.name, path.read_text())
        for path in sorted(migrations.iterdir(), key=lambda p: p.name)
        if path.name.endswith(".sql") and "timeline" in path.read_text()
    ]
    latest = [text for _, text in checks if re.search(r"kind IN \(", text)][-1]
    allowed = set(re.findall(r"'([a-z_]+)'", latest.split("kind IN (", 1)[1].split(")", 1)[0]))
    assert allowed == set(KINDS)
