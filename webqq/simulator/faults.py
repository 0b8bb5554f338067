"""Injected failures for the protocol endpoints (/_sim/fault).

faults: a plan of what goes wrong with the next N requests of a path. The protocol
handlers consult it once per request, before doing anything; the control surface fills
it. It never performs I/O and never touches /_sim/ itself.

Kinds:

* ``status``: answer the HTTP ``status`` (e.g. 502) with an empty body.
* ``reset``: handle the request, then reset the connection instead of answering (the
  request's effects happen, the reply is lost; a poll's items go back to the queue).
* ``delay``: hold the request ``seconds`` before handling it.
* ``retcode``: answer ``{"retcode": N, "errmsg": ""}`` (121 answers ``{"retcode":121,
  "t":"0"}``; on /login, ``ptuiCB('N',…)``) without handling the request.
"""
from dataclasses import asdict, dataclass

__all__ = ["FAULT_KINDS", "Fault", "FaultPlan"]

FAULT_KINDS = ("status", "reset", "delay", "retcode")


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
