"""Run the Argo CD health checks of deploy/argocd/health/*.lua under Lua 5.1.

Argo CD runs health checks with gopher-lua, a Lua 5.1 implementation: the script is a chunk
that sees the resource as the global ``obj`` (JSON null fields are absent) and returns a table
``{status = ..., message = ...}``. Here the same chunk runs under the Lua 5.1 that the PyPI
package ``lupa`` embeds (a dev dependency), or else a ``lua5.1`` binary (Debian: lua5.1).
"""

from __future__ import annotations

import importlib
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[3]
HEALTH = REPO / "deploy/argocd/health"
KINDS = ("TrainingJob", "ModelDeployment", "DriftMonitor")
STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}


def lua_literal(value: Any) -> str:
    """``value`` (JSON data) as a Lua 5.1 table constructor; None fields are left out."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        out = []
        for byte in value.encode():
            char = chr(byte)
            plain = byte < 128 and (char.isalnum() or char in " -_.:/,;()=+*<>'")
            out.append(char if plain else f"\\{byte:03d}")
        return '"' + "".join(out) + '"'
    if isinstance(value, dict):
        items = (f"[{lua_literal(k)}]={lua_literal(v)}" for k, v in value.items() if v is not None)
        return "{" + ",".join(items) + "}"
    if isinstance(value, list | tuple):
        return "{" + ",".join(lua_literal(v) for v in value) + "}"
    raise TypeError(f"not JSON data: {value!r}")


def _program(script: str, obj: dict[str, Any]) -> str:
    # The check is a chunk ending in `return hs`: wrap it in a function to get that table.
    return f"obj = {lua_literal(obj)}\nlocal hs = (function()\n{script}\nend)()\n"


def lua_version() -> str:
    """The _VERSION of the Lua the checks run under."""
    return run_lua("io.write(_VERSION)") if _lupa() is None else str(_lupa().eval("_VERSION"))


def _lupa() -> Any:
    try:
        lua51 = importlib.import_module("lupa.lua51")
    except ImportError:
        return None
    return lua51.LuaRuntime()


def run_lua(program: str) -> str:
    """Run a program with the lua5.1 binary; its stdout."""
    binary = shutil.which("lua5.1")
    if binary is None:
        pytest.fail("no Lua 5.1: install the dev extra (`pip install -e '.[dev]'`: lupa) or lua5.1")
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as file:
        file.write(program)
        file.flush()
        result = subprocess.run(
            [binary, file.name], capture_output=True, text=True, timeout=30, check=False
        )
    assert result.returncode == 0, result.stderr
    return result.stdout


def health(kind: str, obj: dict[str, Any]) -> dict[str, str]:
    """What Argo CD would report for ``obj``: {"status": ..., "message": ...}."""
    program = _program((HEALTH / f"{kind}.lua").read_text(), obj)
    runtime = _lupa()
    if runtime is not None:
        runtime.execute(program + "result = hs")
        hs = runtime.globals().result
        got = {"status": hs["status"], "message": hs["message"]}
    else:
        out = run_lua(program + 'io.write(tostring(hs.status), "\\n", tostring(hs.message))')
        status, _, message = out.partition("\n")
        got = {"status": status, "message": message}
    assert got["status"] in STATUSES, got
    assert isinstance(got["message"], str), got
    assert got["message"], got
    return {"status": str(got["status"]), "message": str(got["message"])}
