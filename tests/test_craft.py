"""The module's shape: what keeps it one navigable file a newcomer can change safely (CLAUDE.md, Structure)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import postgres_server as ps

MODULE = Path(ps.__file__)
MAX_FUNCTION_LINES = 45  # branches are bounded by ruff (PLR0912, C901: pyproject.toml)
DEFERRED = ("httpx", "jwt", "yaml", "pglast", "pgserver", "prometheus_client", "httptools")


def test_importing_the_module_defers_what_only_some_runs_need() -> None:
    """stdio start-up pays for no OAuth (PyJWT), permissions file (yaml), SQL parser (pglast, on first SQL),
    embedded PostgreSQL (pgserver), metrics (prometheus_client), HTTP parser (httptools, uvicorn's), nor a second
    HTTP client (httpx)."""
    probe = f"import sys, postgres_server; print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(DEFERRED)}))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=MODULE.parent,
                            check=True).stdout.strip()  # fmt: skip
    assert loaded == "[]", f"importing postgres_server imported {loaded}"


def test_no_function_is_longer_than_a_screen() -> None:
    tree = ast.parse(MODULE.read_text())
    long = [f"{node.name} (line {node.lineno}): {node.end_lineno - node.lineno + 1} lines"
            for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and node.end_lineno is not None and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]  # fmt: skip
    assert not long, f"split these (at most {MAX_FUNCTION_LINES} lines each): {long}"


def test_imports_inside_functions_are_only_the_deferred_ones() -> None:
    """A function-level import of a module the SDK has loaded anyway defers nothing and hides a type."""
    tree = ast.parse(MODULE.read_text())
    inner = []
    for function in ast.walk(tree):
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            for node in ast.walk(function):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                    inner += [f"{name} in {function.name}" for name in names if name.split(".")[0] not in DEFERRED]
    allowed = {"uvicorn.protocols.http.httptools_impl"}  # imports httptools, the C parser: only HTTP needs it
    assert {entry for entry in inner if entry.split(" in ")[0] not in allowed} == set()
