"""Numbers as the side panel writes them, in Python: ``readable`` and ``show`` give exactly the
text of ``labextension/src/api.ts``'s functions of the same names, so that ``%compare`` and the
Compare tab print the same digits.

JavaScript's number formatting is reproduced, not approximated: ``toPrecision`` and
``toExponential`` round the double's exact decimal value half away from zero (Python's
``format`` rounds half to even), and ``String(number)`` is ECMAScript's Number::toString
(shortest round-trip digits, as ``repr``, but fixed notation up to 1e21 and down to 1e-6, no
``.0`` on whole numbers, ``1e+21`` not ``1e21``). Plain Python, no imports beyond the standard
library.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import Any

_EXACT = Context(prec=1200)  # a double's exact decimal value has at most 767 significant digits


def _digits(x: float, precision: int) -> tuple[str, int]:
    """``x > 0`` rounded to ``precision`` significant digits as JavaScript does: the digits and
    the decimal exponent ``e`` of the first one (``x ~ d.ddd * 10**e``)."""
    exact = Decimal(x)
    e = exact.adjusted()
    n = exact.scaleb(precision - 1 - e, _EXACT).quantize(Decimal(1), ROUND_HALF_UP, _EXACT)
    if n >= 10**precision:  # 9.995 -> 10.0: one more digit before the point
        n, e = n / 10, e + 1
    return str(int(n)), e


def _exponent(e: int) -> str:
    return ("+" if e >= 0 else "-") + str(abs(e))


def js_string(x: float) -> str:
    """``String(x)`` of a JavaScript number (ECMAScript Number::toString)."""
    x = float(x)
    if math.isnan(x):
        return "NaN"
    if x == 0:
        return "0"
    if x < 0:
        return "-" + js_string(-x)
    if math.isinf(x):
        return "Infinity"
    sign, digits, exponent = Decimal(repr(x)).normalize().as_tuple()
    s = "".join(map(str, digits))
    k = len(s)
    n = k + int(exponent)  # x = 0.s * 10**n
    if k <= n <= 21:
        return s + "0" * (n - k)
    if 0 < n <= 21:
        return s[:n] + "." + s[n:]
    if -6 < n <= 0:
        return "0." + "0" * -n + s
    mantissa = s if k == 1 else s[0] + "." + s[1:]
    return mantissa + "e" + _exponent(n - 1)


def to_precision(x: float, precision: int) -> str:
    """JavaScript's ``x.toPrecision(precision)`` (``precision`` 1 to 100)."""
    x = float(x)
    if not math.isfinite(x):
        return js_string(x)
    if x == 0:
        return "0" if precision == 1 else "0." + "0" * (precision - 1)
    if x < 0:
        return "-" + to_precision(-x, precision)
    digits, e = _digits(x, precision)
    if e < -6 or e >= precision:
        mantissa = digits if precision == 1 else digits[0] + "." + digits[1:]
        return mantissa + "e" + _exponent(e)
    if e == precision - 1:
        return digits
    if e >= 0:
        return digits[: e + 1] + "." + digits[e + 1 :]
    return "0." + "0" * (-(e + 1)) + digits


def to_exponential(x: float, fraction: int) -> str:
    """JavaScript's ``x.toExponential(fraction)`` (``fraction`` 0 to 100)."""
    x = float(x)
    if not math.isfinite(x):
        return js_string(x)
    if x < 0:
        return "-" + to_exponential(-x, fraction)
    if x == 0:
        digits, e = "0" * (fraction + 1), 0
    else:
        digits, e = _digits(x, fraction + 1)
    mantissa = digits if fraction == 0 else digits[0] + "." + digits[1:]
    return mantissa + "e" + _exponent(e)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _stringify(value: Any) -> str:
    """``JSON.stringify(value)`` of the JSON value ``value`` (non-finite numbers as null)."""
    import json

    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if _is_number(value):
        return js_string(value) if math.isfinite(value) else "null"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        items = (f"{_stringify(str(k))}:{_stringify(v)}" for k, v in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join("null" if v is None else _stringify(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


def show(value: Any) -> str:
    """Short text for any JSON value: ``—`` for none, a whole number as it is, another number
    to 4 significant figures, a string as it is, anything else as JSON."""
    if value is None:
        return "—"
    if _is_number(value):
        return js_string(value) if float(value).is_integer() else to_precision(value, 4)
    if isinstance(value, str):
        return value
    return _stringify(value)


def readable(value: Any) -> str:
    """A number as a person reads it in a table: about three significant figures (0.835,
    0.000167 as 1.67e-4), whole numbers whole, anything else as :func:`show` gives it."""
    if not _is_number(value) or not math.isfinite(value):
        return show(value)
    number = float(value)
    size = abs(number)
    if number.is_integer() and size < 1e6:
        return js_string(number)
    if size != 0 and (size < 1e-3 or size >= 1e6):
        text = to_exponential(number, 2)
        mantissa, _, exponent = text.partition("e")
        if "." in mantissa:  # the replace(/\.?0+e/, 'e') of the TypeScript
            mantissa = mantissa.rstrip("0").rstrip(".")
        return mantissa + "e" + exponent
    if size >= 1000:
        return js_string(math.floor(number + 0.5))  # Math.round: halves up
    return js_string(float(to_precision(number, 3)))


def exact(value: Any) -> str:
    """The exact value of a number as ``String(value)`` writes it (a cell's tooltip)."""
    return js_string(value)


__all__ = ["readable", "show", "exact", "js_string", "to_precision", "to_exponential"]
