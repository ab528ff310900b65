"""Deterministic identifiers.

Every id the emulator hands out is a pure function of the seed and a few integers, so the same
seed and the same requests always give the same ids, and any part of the world can be rebuilt
from its coordinates without being stored.
"""

from __future__ import annotations

_MASK64 = (1 << 64) - 1
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def mix(*parts: int) -> int:
    """Fold integers into one well-spread unsigned 64-bit value (splitmix64 finaliser)."""
    h = 0x9E3779B97F4A7C15
    for part in parts:
        h = (h ^ (part & _MASK64)) * 0xBF58476D1CE4E5B9 & _MASK64
        h = (h ^ (h >> 31) ^ (part >> 64)) * 0x94D049BB133111EB & _MASK64
        h ^= h >> 29
    return h


def id63(*parts: int) -> int:
    """A positive signed-64-bit id, as FullStory's IndvId/SessionId/PageId are.

    Almost all such values exceed 2**53, which is what makes clients that parse ids as floats
    fail against production; the emulator keeps that property on purpose.
    """
    return (mix(*parts) & ((1 << 63) - 1)) or 1


def token(*parts: int, length: int = 12) -> str:
    """A short opaque alphanumeric id such as FullStory's segment or operation ids."""
    base = mix(*parts)
    chars: list[str] = []
    block = 0
    while len(chars) < length:
        value = mix(base, block)  # 64 bits give 10 full base-62 digits
        for _ in range(min(10, length - len(chars))):
            value, rem = divmod(value, 62)
            chars.append(_ALPHABET[rem])
        block += 1
    return "".join(chars)


def text_key(text: str) -> int:
    """A stable integer for a string (Python's hash() is salted per process)."""
    return int.from_bytes(text.encode("utf-8")[:8].ljust(8, b"\0"), "big") ^ mix(
        len(text), *(ord(c) for c in text[8:])
    )
