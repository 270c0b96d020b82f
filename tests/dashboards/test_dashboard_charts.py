"""The charts read without hovering: a legend for every coloured series, years on time axes;
and a link with a value the data lack says so instead of silently showing something else."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from dashboards import charts
from tests.support.dashboard import APP, publish_sample

PAGES = {
    "overview": {},
    "processing_times": {"form": "I-485"},
    "trends": {"form": "I-485", "period": "quarter"},
    "official": {},
    "health": {},
}


@pytest.fixture(scope="module")
def sample_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1,500 synthetic cases published."""
    home = tmp_path_factory.mktemp("charts") / "home"
    publish_sample(home, n_cases=1500, seed=3)
    return home


@pytest.fixture
def published(sample_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the dashboard at the published sample."""
    monkeypatch.setenv("TIMELINES_HOME", str(sample_home))
    return sample_home


def open_page(page: str, query: dict[str, str]) -> AppTest:
    """Run the app on a page with these query parameters; fail on any exception."""
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    at.switch_page(f"views/{page}.py")
    at.query_params.update(query)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def layers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The spec's layers (the spec itself when it has none)."""
    return list(spec.get("layer", [spec]))


def specs(at: AppTest) -> list[dict[str, Any]]:
    """The Vega-Lite specs of the page's charts."""
    return [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]


@pytest.mark.parametrize("page", list(PAGES))
def test_every_coloured_series_has_a_legend_and_time_axes_say_the_year(
    published: Path, page: str
) -> None:
    at = open_page(page, PAGES[page])
    for spec in specs(at):
        colours = [layer.get("encoding", {}).get("color") for layer in layers(spec)]
        series = [c for c in colours if c and c.get("type") == "nominal" and "field" in c]
        if series:
            assert any(c.get("legend", {}) is not None for c in series), spec.get("layer", spec)
        for layer in layers(spec):
            x = layer.get("encoding", {}).get("x", {})
            if x.get("type") == "temporal":
                assert "%Y" in x.get("axis", {}).get("format", ""), x


def test_the_backlog_chart_names_its_two_series_in_a_legend() -> None:
    months = pl.DataFrame({"decision_month": [date(2025, 1, 1), date(2025, 2, 1)],
                           "n_pending_end": [30, 35], "n_decided": [12, 9]})
    spec = charts.backlog_chart(months).to_dict()
    colours = [layer["encoding"]["color"] for layer in spec["layer"]]
    assert all(c["legend"] is not None for c in colours)
    assert colours[0]["scale"]["domain"] == ["still waiting at month end", "decided that month"]
    assert {t["calculate"] for layer in spec["layer"] for t in layer["transform"]} == {
        "'decided that month'", "'still waiting at month end'"}


@pytest.mark.parametrize(("page", "query", "words"), [
    ("processing_times", {"form": "I-9999"}, "form='I-9999'"),
    ("processing_times", {"form": "I-485", "office": "XYZ"}, "office='XYZ'"),
    ("trends", {"form": "I-485", "period": "fortnight"}, "period='fortnight'"),
])
def test_a_link_with_a_value_the_data_lack_says_so(
    published: Path, page: str, query: dict[str, str], words: str
) -> None:
    at = open_page(page, query)
    warnings = " ".join(str(w.value) for w in at.warning)
    assert words in warnings and "Choices:" in warnings
