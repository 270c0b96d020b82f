"""One-time deletion codes: random, shown once, stored only as a hash.

A code is 100 random bits written in Crockford's base 32 (no I, L, O or U), grouped for
reading aloud: TL-7KQ4-M2XD-9HRW-B6ZP-3TNC. It owes nothing to the receipt number, so it
cannot be guessed from it; being random, a plain SHA-256 of it cannot be reversed either.
"""

from __future__ import annotations

import hashlib
import re
import secrets

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_GROUPS = 5
_GROUP_LENGTH = 4
PREFIX = "TL"
_CODE_RE = re.compile(rf"^[{_ALPHABET}]{{{_GROUPS * _GROUP_LENGTH}}}$")


class InvalidCodeError(ValueError):
    """A string that cannot be a deletion code."""


def new_deletion_code() -> str:
    """Draw a fresh random deletion code."""
    chars = "".join(secrets.choice(_ALPHABET) for _ in range(_GROUPS * _GROUP_LENGTH))
    groups = [chars[i : i + _GROUP_LENGTH] for i in range(0, len(chars), _GROUP_LENGTH)]
    return "-".join([PREFIX, *groups])


def normalize_code(raw: str) -> str:
    """The code's 20 characters, forgiving case, spaces, dashes and look-alike letters."""
    text = re.sub(r"[\s\-_.]", "", str(raw)).upper()
    if text.startswith(PREFIX) and len(text) == len(PREFIX) + _GROUPS * _GROUP_LENGTH:
        text = text[len(PREFIX) :]
    text = text.translate(str.maketrans("OILU", "011V"))
    if not _CODE_RE.match(text):
        raise InvalidCodeError(
            "this is not a deletion code: a code looks like TL-7KQ4-M2XD-9HRW-B6ZP-3TNC "
            "(the letters TL and five groups of four letters or digits)"
        )
    return text


def hash_code(raw: str) -> str:
    """The hash under which a submission remembers its deletion code."""
    return hashlib.sha256(("timelines-deletion-code:" + normalize_code(raw)).encode()).hexdigest()
