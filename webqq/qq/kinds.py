"""The two enumerations that name what the protocol tells apart: its era and a chat's kind.

kinds: plain values; no I/O, nothing else of webqq imported.
"""
import enum

__all__ = ["Era", "ChatKind"]


class Era(enum.Enum):
    """Protocol shape (§1.1): A spring 2013 (the default), B late 2013."""
    A = "A"
    B = "B"


class ChatKind(str, enum.Enum):
    """Where a message is said: to a friend, in a group, in a discussion, or in a
    temporary session with a stranger met in a group or discussion.

    A ``str`` enum whose value is its lower-case name, so that ``ChatKind.BUDDY ==
    "buddy"`` and the values kept in JSON, the message store and on the command line are
    read and written unchanged; ``str()`` and ``%s`` give the value too.
    """
    BUDDY = "buddy"
    GROUP = "group"
    DISCUSSION = "discussion"
    SESSION = "session"

    def __str__(self) -> str:
        return self.value
