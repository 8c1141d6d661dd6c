"""The shipped case library of verijac, one module per family.

Each module defines ``CASES``, a list of `verijac.Case`. Installed as the package
``verijac_cases`` so the cases are found outside the checkout too.
"""
