"""The one exception the contract raises: input that cannot be validated row by row."""

from __future__ import annotations


class ContractError(ValueError):
    """A history that breaks the contract as a whole.

    Raised for a missing folder or table, a missing required column, an unreadable file,
    or (from ``load_history``) a reject share above the configured limit. Row-level
    problems never raise: they become rejects.
    """
