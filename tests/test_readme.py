"""Specification: the README prints the lifecycle table the code runs on."""

from pathlib import Path

from shared.lifecycle import table_markdown


def test_the_readme_shows_the_lifecycle_table_the_services_use():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()

    assert table_markdown() in readme
