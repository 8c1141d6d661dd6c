"""Exact numbers for reference tables: correct rounding to decimals and binary formats.

Every value a table prints is derived from an exact rational ``num / den`` (an exact entry,
or an mpmath value, which is itself a dyadic rational) by integer arithmetic alone, so each
rounding happens once: the float32 column is never the float64 column rounded again.
"""

from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass
from fractions import Fraction
from typing import Any


@dataclass(frozen=True)
class BinaryFormat:
    """An IEEE binary format: significand bits (hidden bit included) and exponent range."""

    name: str
    bits: int
    emin: int
    emax: int


#: The formats a table or a regression rounds to.
FORMATS: dict[str, BinaryFormat] = {
    "float64": BinaryFormat("float64", 53, -1022, 1023),
    "float32": BinaryFormat("float32", 24, -126, 127),
    "float16": BinaryFormat("float16", 11, -14, 15),
    "bfloat16": BinaryFormat("bfloat16", 8, -126, 127),
}

_RATIONAL = re.compile(r"-?\d+(/\d+)?")
_DECIMAL = re.compile(r"-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _floor_log2(num: int, den: int) -> int:
    """``floor(log2(num / den))`` for positive integers."""
    e = num.bit_length() - den.bit_length()
    if (num << max(-e, 0)) < (den << max(e, 0)):
        e -= 1
    return e


def _div_even(num: int, den: int) -> int:
    """``num / den`` rounded to the nearest integer, ties to even (``num``, ``den`` > 0)."""
    q, r = divmod(num, den)
    if 2 * r > den or (2 * r == den and q & 1):
        q += 1
    return q


def round_binary(value: Fraction, fmt: BinaryFormat) -> float:
    """``value`` correctly rounded (to nearest, ties to even) to ``fmt``, as a Python float.

    Subnormals keep their fixed absolute spacing; a value at or beyond the overflow threshold
    becomes ±inf. The result is exactly representable in float64, so the Python float *is*
    the ``fmt`` number.
    """
    return round_ratio(value.numerator, value.denominator, fmt)


def round_ratio(signed_num: int, den: int, fmt: BinaryFormat) -> float:
    """`round_binary` of ``signed_num / den`` (``den`` > 0), without building a `Fraction`."""
    num = abs(signed_num)
    if num == 0:
        return 0.0
    fast = _fast_round(num, den, fmt)
    if fast is not None:
        return -fast if signed_num < 0 else fast
    e = max(_floor_log2(num, den), fmt.emin)
    shift = e - (fmt.bits - 1)  # the exponent of one unit in the last place
    m = _div_even(num, den << shift) if shift >= 0 else _div_even(num << -shift, den)
    result = math.inf if m.bit_length() + shift > fmt.emax + 1 else math.ldexp(m, shift)
    return -result if signed_num < 0 else result


def _fast_round(num: int, den: int, fmt: BinaryFormat) -> float | None:
    """The float64 rounding by the correctly rounded integer division of CPython, and the
    float32 rounding by a C cast when the quotient is exact in float64 (one rounding only);
    ``None`` where neither applies."""
    if fmt.name not in ("float64", "float32"):
        return None
    try:
        x = num / den
    except OverflowError:
        return None
    if fmt.name == "float64":
        return x
    if x.as_integer_ratio() != (num, den):
        return None
    try:
        return float(struct.unpack("f", struct.pack("f", x))[0])
    except OverflowError:
        return None


def bit_pattern(x: float, fmt: BinaryFormat) -> str:
    """The IEEE bit pattern of ``x`` (already a ``fmt`` number) as ``0x…`` hex: 16 digits for
    float64, 8 for float32, 4 for float16 and bfloat16."""
    if fmt.name == "float64":
        return f"0x{struct.unpack('>Q', struct.pack('>d', x))[0]:016x}"
    if fmt.name == "float32":
        return f"0x{struct.unpack('>I', struct.pack('>f', x))[0]:08x}"
    if fmt.name == "float16":
        return f"0x{struct.unpack('>H', struct.pack('>e', x))[0]:04x}"
    return f"0x{struct.unpack('>I', struct.pack('>f', x))[0] >> 16:04x}"


def shortest_text(x: float, fmt: BinaryFormat) -> str:
    """The shortest decimal that reads back as the ``fmt`` number ``x`` (``repr`` style)."""
    if not math.isfinite(x) or fmt.name == "float64":
        return repr(x)
    # Below 7 digits, a decimal that reads back as a float32 is within half its spacing, so
    # rounding to 6 digits (``g`` drops trailing zeros) finds it: start there.
    for digits in range(6 if fmt.name == "float32" else 1, 18):
        text = f"{x:.{digits}g}"
        y = float(text)
        # A cast is a second rounding (text → float64 → fmt): confirm the candidate exactly.
        if _cast(y, fmt) == x and round_binary(Fraction(text), fmt) == x:
            return repr(y)
    return repr(x)  # pragma: no cover (9 digits always suffice for float32)


def _cast(y: float, fmt: BinaryFormat) -> float:
    if fmt.name == "float32":
        try:
            return float(struct.unpack("f", struct.pack("f", y))[0])
        except OverflowError:
            return math.copysign(math.inf, y)
    return round_binary(Fraction(y), fmt)


def decimal_text(value: Fraction, digits: int) -> str:
    """``value`` correctly rounded to ``digits`` significant digits (ties to even).

    Trailing zeros are kept, so the text shows how many digits are given: ``48`` at 5 digits
    is ``48.000``; exponents outside ``[-5, digits)`` use ``e`` notation (``1.2500e-7``).
    """
    return decimal_ratio(value.numerator, value.denominator, digits)


def decimal_ratio(signed_num: int, den: int, digits: int) -> str:
    """`decimal_text` of ``signed_num / den`` (``den`` > 0), without building a `Fraction`."""
    if signed_num == 0:
        return "0"
    num = abs(signed_num)
    e = len(str(num)) - len(str(den))
    if num * 10 ** max(-e, 0) < den * 10 ** max(e, 0):
        e -= 1
    scale = digits - 1 - e
    m = _div_even(num * 10**scale, den) if scale >= 0 else _div_even(num, den * 10**-scale)
    if m >= 10**digits:  # rounding carried into a new digit
        m //= 10
        e += 1
    text = str(m)
    sign = "-" if signed_num < 0 else ""
    if 0 <= e < digits:
        body = text[: e + 1] + ("." + text[e + 1 :] if e + 1 < digits else "")
    elif -5 <= e < 0:
        body = "0." + "0" * (-e - 1) + text
    else:
        body = text[0] + ("." + text[1:] if digits > 1 else "") + f"e{e:+d}"
    return sign + body


def exact_text(value: Fraction) -> str:
    """An exact rational as ``48`` or ``-7/3``."""
    if value.denominator == 1:
        return str(value.numerator)
    return f"{value.numerator}/{value.denominator}"


def dyadic_text(value: Fraction) -> str:
    """A dyadic rational (a binary float's value) as its exact, terminating decimal."""
    if value.denominator == 1:
        return str(value.numerator)
    k = value.denominator.bit_length() - 1  # den = 2**k: k decimal places suffice
    scaled = abs(value.numerator) * 5**k
    digits = str(scaled).rjust(k + 1, "0")
    body = (digits[:-k] + "." + digits[-k:]).rstrip("0")
    return ("-" if value < 0 else "") + body


def parse_exact(text: str) -> Fraction | None:
    """``48``, ``-7/3`` or a decimal such as ``2.375`` / ``1.5e-3`` as an exact `Fraction`;
    ``None`` for any other text (``pi/4``: the caller parses it safely)."""
    if _RATIONAL.fullmatch(text):
        num, _, den = text.partition("/")
        if den and int(den) == 0:
            return None
        return Fraction(int(num), int(den or 1))
    if _DECIMAL.fullmatch(text):
        return Fraction(text)
    return None


def parse_float(text: str) -> float | None:
    """The float a table's ``float64``/``float32`` column holds (``inf`` allowed, NaN not)."""
    if text in ("inf", "-inf"):
        return float(text)
    if _DECIMAL.fullmatch(text):
        return float(text)
    return None


def mpf_ratio(value: Any) -> tuple[int, int]:
    """An mpmath ``mpf`` as the exact ``(numerator, denominator)`` it holds (finite values
    only; mpmath keeps odd mantissas, so the ratio is in lowest terms)."""
    sign, man, exp, _ = value._mpf_
    num, den = (man << exp, 1) if exp >= 0 else (man, 1 << -exp)
    return (-num if sign else num), den


__all__ = [
    "FORMATS",
    "BinaryFormat",
    "bit_pattern",
    "decimal_ratio",
    "decimal_text",
    "dyadic_text",
    "exact_text",
    "mpf_ratio",
    "parse_exact",
    "parse_float",
    "round_binary",
    "round_ratio",
    "shortest_text",
]
