"""Injected failures for the protocol endpoints (/_sim/fault).

faults: a plan of what goes wrong with the next N requests of a path. The protocol
handlers consult it once per request, before doing anything; the control surface fills
it. It never performs I/O and never touches /_sim/ itself.

Kinds:

* ``status``: answer the HTTP ``status`` (e.g. 502) with an empty body.
* ``reset``: reset the connection instead of answering.
* ``delay``: hold the request ``seconds`` before handling it.
* ``retcode``: answer ``{"retcode": N, "errmsg": ""}`` (121 answers ``{"retcode":121,
  "t":"0"}``; on /login, ``ptuiCB('N',…)``) without handling the request.

``when`` says whether a ``status`` or ``reset`` strikes ``before`` the request is handled
(nothing happened: a send was not delivered) or ``after`` it (its effects happened, a
send was delivered, and only the answer is lost; a poll's items go back to the queue,
and a 116 it carried is undone and owed again).
By default a status strikes before and a reset after.
"""
from dataclasses import asdict, dataclass

__all__ = ["FAULT_KINDS", "FAULT_WHEN", "Fault", "FaultPlan", "default_when"]

FAULT_KINDS = ("status", "reset", "delay", "retcode")
#: When a status or reset fault strikes, relative to handling the request.
FAULT_WHEN = ("before", "after")


def default_when(kind: str) -> "str | None":
    """``when`` of a fault that does not say: status before, reset after, others None."""
    return {"status": "before", "reset": "after"}.get(kind)


@dataclass
class Fault:
    """One injected failure; ``count`` is how many matching requests it still hits."""

    path: str
    kind: str
    count: int = 1
    status: int = 502
    seconds: float = 1.0
    retcode: int = 0
    host: "str | None" = None       # None: any host
    when: "str | None" = None       # status and reset: "before" or "after" handling

    def matches(self, host: str, path: str) -> bool:
        return self.path == path and (self.host is None or self.host == host)


class FaultPlan:
    """The pending faults, first added first applied."""

    def __init__(self):
        self._faults = []

    def add(self, fault: Fault) -> None:
        self._faults.append(fault)

    def take(self, host: str, path: str) -> "Fault | None":
        """The fault for this request, if any, counting it as used once."""
        for fault in self._faults:
            if fault.matches(host, path):
                fault.count -= 1
                if fault.count <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def clear(self) -> None:
        self._faults.clear()

    def describe(self) -> list:
        return [asdict(f) for f in self._faults]
