"""What the simulated back end answers when it says no.

errors: two exceptions. ``Refusal`` carries the retcode body of §6 that a
protocol handler writes as it is (HTTP 200, the retcode says what went wrong);
``ControlError`` is a /_sim/ request that does not fit the current state (HTTP 409).
Neither ever carries a token in its text.
"""
__all__ = ["ControlError", "Refusal", "channel_refusal"]


class Refusal(Exception):
    """A request the back end refuses; ``body`` is the JSON reply (§6)."""

    def __init__(self, retcode: int, **extra):
        super().__init__(retcode)
        self.body = {"retcode": retcode, **extra}


def channel_refusal(retcode: int) -> Refusal:
    """A d.web2 error: the retcode plus the empty errmsg of the poll and send samples."""
    return Refusal(retcode, errmsg="")


class ControlError(Exception):
    """A /_sim/ request that does not fit the current state (HTTP 409 on the surface)."""
