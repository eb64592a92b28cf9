"""Tidy: the house rules that a reviewer would otherwise check by eye.

Method: read the source tree and the compiled core; no engine behaviour is exercised here.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import engine._dtypes as dtypes
from engine import _core

ROOT = Path(__file__).resolve().parents[1]
# Packages whose money and quantity paths must stay integer.
INTEGER_PACKAGES = ["engine", "ledger", "custody"]
FLOAT_WORDS = re.compile(r"\b(float|float32|float64)\b|\bdouble\b(?!-)")  # not "double-entry"
# Process shells around the deterministic code: they pass money through as encoded bytes and
# use floats only for timeouts in seconds, as asyncio and nats-py take them.
IO_SHELLS = {
    "engine/loop.py",
    "engine/journal.py",
    "engine/pull.py",
    "engine/servers.py",
    "ledger/consumer.py",
    "ledger/service.py",
}


def test_every_cython_module_ships_pxd_and_pyi() -> None:
    for pyx in ROOT.glob("*/*.pyx"):
        assert pyx.with_suffix(".pxd").exists(), f"{pyx} has no .pxd table of contents"
        assert pyx.with_suffix(".pyi").exists(), f"{pyx} has no .pyi for typing"


def test_no_float_in_integer_packages() -> None:
    offenders = []
    for package in INTEGER_PACKAGES:
        for path in (ROOT / package).rglob("*"):
            if path.suffix not in {".py", ".pyx", ".pxd"}:
                continue
            if str(path.relative_to(ROOT)) in IO_SHELLS:
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                code = line.split("#", 1)[0]
                if FLOAT_WORDS.search(code):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "float in an integer money path:\n" + "\n".join(offenders)


def test_c_records_match_numpy_layouts() -> None:
    for name, size in _core._record_sizes().items():
        assert getattr(dtypes, name).itemsize == size, f"{name} differs from its C struct"


def test_every_limit_has_a_reason_comment() -> None:
    lines = (ROOT / "engine" / "_limits.py").read_text().splitlines()
    for number, line in enumerate(lines):
        if re.match(r"^\w+_max = ", line):
            assert lines[number - 1].startswith("#"), f"limit without a reason: {line}"


def test_generated_code_is_fresh() -> None:
    """gateway/_proto and engine/_codes.py are what proto/generate.py makes of proto/ now."""
    spec = importlib.util.spec_from_file_location("generate", ROOT / "proto" / "generate.py")
    assert spec and spec.loader
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    assert generate.check() == [], "generated code is stale: run `make proto`"
