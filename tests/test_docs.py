"""The docs stay true: every setting is in the README's table, and CI runs the README's test command."""

from __future__ import annotations

import json

from conftest import ROOT, ps

README = (ROOT / "README.md").read_text()


def test_every_setting_is_documented_with_its_default() -> None:
    rows = {line.split("|")[1].strip(): line for line in README.splitlines() if line.startswith("| `")}
    for setting in ps.SETTINGS:
        key = " / ".join(f"`{name}`" for name in setting.env)
        assert key in rows, f"{key} missing from the README configuration table"
        row = rows[key]
        assert f"`{setting.flag}`" in row
        default = setting.default
        default = (
            "—" if default in (None, ()) else "off" if default is False else "on" if default is True else str(default)
        )
        assert f"| {default} |" in row, f"{key}: README default differs from {default!r}"


def test_ci_runs_the_readme_test_command() -> None:
    assert "\npytest " in README or "\npytest\n" in README
    ci = (ROOT / ".ci" / "run").read_text()
    assert any(line.strip().endswith("pytest") for line in ci.splitlines())


def test_mcp_json_starts_this_server() -> None:
    server = json.loads((ROOT / ".mcp.json").read_text())["mcpServers"]["postgres"]
    # Run from the repository root as a module, as tests/test_process.py starts it.
    assert server["args"] == ["-m", "postgres_server"] and (ROOT / "postgres_server.py").is_file()
    assert "DATABASE_URL" in server["env"]
