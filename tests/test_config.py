"""Settings: each is documented, read from KB_* variables, and reaches the engine."""

from __future__ import annotations

from pathlib import Path

from kb_site import create_app
from kb_site.config import SETTINGS, search_config

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_every_setting_is_documented_in_the_readme():
    """The README's configuration table names every KB_* variable."""
    missing = [s.env for s in SETTINGS if f"`{s.env}`" not in README]
    assert not missing


def test_environment_overrides_defaults(monkeypatch, tmp_path):
    """KB_* variables override defaults, numbers parsed as numbers."""
    monkeypatch.setenv("KB_LEXICAL_WEIGHT", "0.4")
    monkeypatch.setenv("KB_INSTANCE_DIR", str(tmp_path / "inst"))
    app = create_app()
    assert app.instance_path == str(tmp_path / "inst")
    assert search_config(app.config).lexical_weight == 0.4


def test_cli_help_lists_every_command(runner):
    """kb --help names each command, and each command's help is in the README."""
    result = runner.invoke(args=["--help"])
    for command in ("serve", "index", "search", "check", "eval", "bench", "db", "worker", "tickets", "staff", "link",
                    "purge"):
        assert command in result.output
        assert f"kb {command}" in README
