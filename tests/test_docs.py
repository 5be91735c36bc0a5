"""The docs stay true: every setting is in the README's table, and CI runs the README's test command."""

from __future__ import annotations

import json
import shlex

from conftest import ROOT, ps

README = (ROOT / "README.md").read_text()


def configuration_table() -> list[tuple[str, str, str]]:
    """The README's configuration table: (environment, flag, default) cells of each row, as written."""
    section = README.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        if line.startswith("| `"):
            environment, flag, default = (cell.strip() for cell in line.split("|")[1:4])
            rows.append((environment, flag, default))
    return rows


def documented(setting: ps.Setting) -> tuple[str, str, str]:
    """The row cells a setting should have: its variables, its flag, its default as the README writes it."""
    default = setting.default
    shown = "—" if default in (None, ()) else "off" if default is False else "on" if default is True else str(default)
    return " / ".join(f"`{name}`" for name in setting.env), f"`{setting.flag}`", shown


def test_every_setting_is_documented_with_its_default() -> None:
    table = configuration_table()
    for setting in ps.SETTINGS:
        row = documented(setting)
        assert row in table, f"{row} missing from the README configuration table (or its flag or default differs)"


def test_the_configuration_table_names_only_settings_that_exist() -> None:
    table = configuration_table()
    settings = [documented(setting) for setting in ps.SETTINGS]
    assert [row for row in table if row not in settings] == [], "README rows for settings the server does not have"
    assert len(table) == len(set(table)) == len(settings)  # each setting once


def readme_test_command() -> list[str]:
    """The command on the line commented `# test:` in the README's quick-start code block, as words."""
    block = README.split("\n## The two commands\n", 1)[1].split("```bash\n", 1)[1].split("\n```", 1)[0]
    (line,) = [line for line in block.splitlines() if "# test:" in line]
    return shlex.split(line.split("#", 1)[0])


def test_ci_runs_the_readme_test_command() -> None:
    """.ci/run runs the README's test command exactly, with no database configured (the embedded PostgreSQL)."""
    command = readme_test_command()
    assert command
    ci = (ROOT / ".ci" / "run").read_text()
    prefix = ["env", "-u", "TEST_DATABASE_URL", "-u", "DATABASE_URL"]
    lines = [shlex.split(line) for line in ci.splitlines() if line.startswith("env ")]
    runs = [words[len(prefix) :] for words in lines if words[: len(prefix)] == prefix]
    assert runs == [command], f".ci/run runs {runs} after {' '.join(prefix)}, the README says {command}"


def test_mcp_json_starts_this_server() -> None:
    server = json.loads((ROOT / ".mcp.json").read_text())["mcpServers"]["postgres"]
    # Run from the repository root as a module, as tests/test_process.py starts it.
    assert server["args"] == ["-m", "postgres_server"] and (ROOT / "postgres_server.py").is_file()
    assert "DATABASE_URL" in server["env"]


def test_the_docker_build_context_holds_only_what_the_image_copies() -> None:
    """.dockerignore keeps the .venv (hundreds of MB), .git and node_modules out of the context sent to Docker."""
    copied = {part for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("COPY ")
              for part in line.split()[1:-1]}  # fmt: skip
    rules = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")]
    assert rules[0] == "*" and {rule.removeprefix("!") for rule in rules[1:]} == copied


def test_the_docker_healthcheck_probes_the_port_mcp_port_names() -> None:
    import os
    import subprocess
    import sys

    from conftest import server_process

    line = next(line for line in (ROOT / "Dockerfile").read_text().splitlines() if '"-c"' in line)
    code = json.loads(line.strip().removeprefix("CMD "))[-1]
    with server_process({}) as (_, base):
        port = base.rsplit(":", 1)[1]
        healthy = subprocess.run([sys.executable, "-c", code], env={**os.environ, "MCP_PORT": port}, check=False)
        wrong = subprocess.run([sys.executable, "-c", code], env={**os.environ, "MCP_PORT": "1"}, check=False,
                               capture_output=True)  # fmt: skip
    assert healthy.returncode == 0 and wrong.returncode != 0
