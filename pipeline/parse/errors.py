"""The error every parser raises: a message that tells the user what to fix."""

from __future__ import annotations


class ParseError(ValueError):
    """An input that cannot be read as a case history; the message says why and what to fix."""
