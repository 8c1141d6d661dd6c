"""The error hierarchy: every error verijac raises on purpose derives from `VerijacError`."""

from __future__ import annotations


class VerijacError(Exception):
    """Root of every error verijac raises on purpose."""


class CaseError(VerijacError, ValueError):
    """A case is malformed: bad inputs, outputs, domain, known points or tolerances."""


class DomainError(CaseError):
    """A domain is empty, inverted or refers to an unknown input."""


class ShapeError(VerijacError, ValueError):
    """A tensor or array does not have the shape the case describes."""


class ParseError(VerijacError, ValueError):
    """Text could not be parsed safely into an expression or a case."""


class UnsupportedFunctionError(VerijacError, TypeError):
    """An expression uses a function that verijac has no torch mapping for."""


class UnknownCaseError(VerijacError, LookupError):
    """No case is registered under the requested name."""


class UnknownPathError(VerijacError, LookupError):
    """No autograd path is registered under the requested name."""


class TableError(VerijacError, ValueError):
    """A reference table file is missing, corrupt or does not match its case."""


class UsageError(VerijacError, ValueError):
    """A user-facing API or CLI was called with invalid options."""


class InternalError(VerijacError, RuntimeError):
    """verijac contradicted itself: a bug in verijac, never a fault of the caller's input.

    The message says so and asks for a report; `detail` is the inconsistency alone.
    """

    PREFIX = "internal error (a bug in verijac, not in your input): "
    SUFFIX = "; please report it with the code or command you ran and this message"

    def __init__(self, detail: str) -> None:
        # Code that adds context by re-raising `type(exc)(f"{where}: {exc}")` passes a whole
        # message back in: keep one prefix and one request to report.
        self.detail = detail.replace(self.PREFIX, "").replace(self.SUFFIX, "")
        super().__init__(f"{self.PREFIX}{self.detail}{self.SUFFIX}")
