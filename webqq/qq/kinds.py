"""The enumeration of the protocol's shapes: ``Era``.

kinds: plain values; no I/O, nothing else of webqq imported.
"""
import enum

__all__ = ["Era"]


class Era(enum.Enum):
    """Protocol shape (§0.1): A spring 2013 (the default), B late 2013."""
    A = "A"
    B = "B"

