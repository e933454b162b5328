"""The README's lifecycle diagrams are the ones the transition tables draw."""

from __future__ import annotations

from pathlib import Path

from issuance.domain.lifecycle import END_MARKER, START_MARKER, readme_section, replace_section
from issuance.domain.statuses import SHIPMENT_TRANSITIONS, TRANSITIONS

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_shows_the_current_tables() -> None:
    text = README.read_text()
    assert readme_section() in text, "run: issuance docs lifecycle --write README.md"


def test_every_transition_is_drawn() -> None:
    section = readme_section()
    for source, targets in TRANSITIONS.items():
        for target in targets:
            assert f"    {source.value} --> {target.value}\n" in section
    for shipment_source, shipment_targets in SHIPMENT_TRANSITIONS.items():
        name = "[*]" if shipment_source is None else shipment_source.value
        for shipment_target in shipment_targets:
            assert f"    {name} --> {shipment_target.value}" in section


def test_replacing_keeps_the_rest_of_the_document() -> None:
    document = f"intro\n{START_MARKER}\nstale\n{END_MARKER}\noutro\n"
    replaced = replace_section(document)
    assert replaced.startswith("intro\n")
    assert replaced.endswith("\noutro\n")
    assert "stale" not in replaced
