"""The shipped case library of verijac, one module per family.

Each module defines ``CASES``, a list of `verijac.Case`. Installed as the package
``verijac_cases`` so the cases are found outside the checkout too.
"""

#: Path globs covering every second-order path of the catalogue (Hessians, HVPs, VHPs and the
#: higher-order family), for ``known_failures`` entries that concern second derivatives.
SECOND_ORDER_PATHS = (
    "func.hessian",
    "func.jac*_jac*",
    "functional.hessian",
    "functional.hvp",
    "functional.vhp",
    "higher-order",
)


def second_order(reason: str, *, dtype: str = "") -> dict[str, str]:
    """``known_failures`` entries for every second-order path (one dtype when given)."""
    suffix = f"@{dtype}" if dtype else ""
    return {f"{glob}{suffix}": reason for glob in SECOND_ORDER_PATHS}
