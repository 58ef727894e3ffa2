"""The CLI reference in docs/ matches the parser."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_cli_reference_is_current():
    """docs/cli.md is the parser's own help (regenerate: python scripts/make_cli_docs.py)."""
    spec = importlib.util.spec_from_file_location(
        "make_cli_docs", ROOT / "scripts/make_cli_docs.py"
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert (ROOT / "docs" / "cli.md").read_text() == mod.render()
