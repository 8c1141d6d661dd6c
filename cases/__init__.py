"""The shipped case library of verijac, one module per family.

Each module defines ``CASES``, a list of `verijac.Case`. Installed as the package
``verijac_cases`` so the cases are found outside the checkout too.

Known torch defects that cases show are data in ``verijac/torch_defects/*.toml``, with the torch
versions they were measured on (see docs/torch-defects.md), not part of the cases.
"""
