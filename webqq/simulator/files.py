"""Files through the simulator: a friend's offer taken or refused, and offline files.

files: docs/protocol.rst §3.26 and §5.11 without HTTP. A simulated friend offers a file
(a ``file_message`` with ``mode`` ``recv`` naming a transfer ``session_id``), takes the
offer back (``mode`` ``refuse``, ``cancel_type`` 1), or leaves a file while the account
is away (``push_offfile`` naming this simulator's file server, ``ip``, ``port`` and a
key, ``rkey``). The account answers with ``get_file2`` or ``refuse_file2``; what it did
with each transfer, and each download, is recorded for /_sim/files. It never touches a
socket and never logs a file's bytes or a token.

The rules (pidgin-lwqq ``lwqq_msg_accept_file``, ``lwqq_msg_refuse_file``,
``lwqq_msg_offfile_get_url``, f00a950):

``get_file2``
    ``lcid`` a transfer offered to this account, by the friend ``to`` names, of the file
    ``guid`` names, neither refused nor taken back: a 302 to the file server (taken
    again after a first time, the transfer stays accepted). Anything else answers
    ``{"retcode":102,"errmsg":""}`` from d.web2 itself, the refusal pidgin-lwqq reads.
``refuse_file2``
    ``lcid`` and ``to`` as above, an offer not yet answered: ``{"retcode":0,
    "result":"ok"}``; anything else 102 (ours).
the file server
    ``/file/TICKET`` (our path; pidgin-lwqq only followed the Location), and offline
    files at ``/NAME?ver=2173&rkey=RKEY&range=N``: the name and key of a file left for
    an account, the bytes from offset ``range`` (0 when absent). Anything else is a 404.
"""
import hashlib
import logging
from dataclasses import dataclass

from . import wire
from .errors import ControlError, channel_refusal
from .events import EventSpec
from .tokens import hex_token

__all__ = ["FILE_MAX", "Files"]

log = logging.getLogger("webqq.simulator")

#: Bytes of a file a simulated friend offers or leaves: our cap (the client's own is
#: 10 MiB; a larger file lets a test meet it).
FILE_MAX = 32 * 1024 * 1024

# A transfer's states, in the order they can happen.
OFFERED, ACCEPTED, REFUSED, CANCELLED = "offered", "accepted", "refused", "cancelled"


@dataclass
class _Transfer:
    session_id: int
    account: int            # QQ number it is offered to
    sender: int             # QQ number of the friend offering it
    name: str
    data: bytes
    ticket: str
    state: str = OFFERED
    downloads: int = 0

    def to_json(self) -> dict:
        return {"kind": "offer", "session_id": self.session_id, "from": self.sender,
                "name": self.name, "size": len(self.data),
                "sha1": hashlib.sha1(self.data).hexdigest(), "state": self.state,
                "downloads": self.downloads}


@dataclass
class _OfflineFile:
    rkey: str
    account: int
    sender: int
    name: str
    data: bytes
    downloads: int = 0

    def to_json(self) -> dict:
        return {"kind": "offline", "rkey": self.rkey, "from": self.sender, "name": self.name,
                "size": len(self.data), "sha1": hashlib.sha1(self.data).hexdigest(),
                "downloads": self.downloads}


class Files:
    """Transfers offered to the accounts and files left for them (see the module doc).

    Args:
        world: the loaded World.
        rng: the seeded ``random.Random`` (session ids, keys, tickets).
        chat: the ``ChatRouter`` items are pushed through.
        address: returns the file server's ``(host, port)``: the simulator's plain port.
    """

    def __init__(self, world, rng, chat, address):
        self.world = world
        self.rng = rng
        self.chat = chat
        self.address = address
        self._transfers = {}            # (account, session_id) -> _Transfer
        self._by_ticket = {}            # ticket -> _Transfer
        self._offline = {}              # rkey -> _OfflineFile

    # --- the control surface's verbs -----------------------------------------------------

    def _check(self, to: int, sender: int, name: str, data: bytes) -> None:
        if self.world.accounts[to].friend(sender) is None:
            raise ValueError("from: %d is not a friend of %d (only friends send files)"
                             % (sender, to))
        if not name or len(name) > 255 or "\x00" in name:
            raise ValueError("name: a file name of 1 to 255 characters")
        if len(data) > FILE_MAX:
            raise ValueError("base64: %d bytes, over the simulator's %d" % (len(data), FILE_MAX))

    def offer(self, to: int, sender: int, name: str, data: bytes) -> dict:
        """Friend ``sender`` offers account ``to`` a file: the ``file_message`` item.

        Raises:
            ValueError: not a friend, a bad name, too large.
            ControlError: the account is not logged in.
        """
        self._check(to, sender, name, data)
        session_id = self.rng.randrange(10000, 30000)
        while (to, session_id) in self._transfers:
            session_id = self.rng.randrange(10000, 30000)
        item = self.chat.push_event(to, EventSpec("file_message", sender=sender, subtype="recv",
                                                  text=name, value={"session_id": session_id}))
        transfer = _Transfer(session_id, to, sender, name, bytes(data), hex_token(self.rng, 32))
        self._transfers[(to, session_id)] = self._by_ticket[transfer.ticket] = transfer
        log.info("file offered to %d by %d (transfer %d, %d bytes)", to, sender, session_id,
                 len(data))
        return item

    def cancel(self, to: int, session_id: int) -> dict:
        """The friend takes offer ``session_id`` back: the ``file_message`` ``refuse`` item.

        Raises:
            ValueError: no such transfer. ControlError: it was answered already, or the
                account is not logged in.
        """
        transfer = self._transfers.get((to, session_id))
        if transfer is None:
            raise ValueError("session_id: no transfer %d offered to %d" % (session_id, to))
        if transfer.state != OFFERED:
            raise ControlError("transfer %d is %s already" % (session_id, transfer.state))
        item = self.chat.push_event(to, EventSpec("file_message", sender=transfer.sender,
                                                  subtype="refuse",
                                                  value={"session_id": session_id}))
        transfer.state = CANCELLED
        return item

    def leave(self, to: int, sender: int, name: str, data: bytes) -> dict:
        """Friend ``sender`` leaves account ``to`` a file: the ``push_offfile`` item.

        Raises:
            ValueError, ControlError: as ``offer``.
        """
        self._check(to, sender, name, data)
        rkey = hex_token(self.rng, 64)
        host, port = self.address()
        item = self.chat.push_event(to, EventSpec("push_offfile", sender=sender, text=name,
                                                  value={"rkey": rkey, "ip": host, "port": port,
                                                         "size": len(data)}))
        self._offline[rkey] = _OfflineFile(rkey, to, sender, name, bytes(data))
        log.info("offline file left for %d by %d (%d bytes)", to, sender, len(data))
        return item

    def report(self, qq: int) -> list:
        """/_sim/files: the account's transfers, then its offline files, in order."""
        return ([t.to_json() for (account, _), t in self._transfers.items() if account == qq]
                + [f.to_json() for f in self._offline.values() if f.account == qq])

    # --- the protocol ------------------------------------------------------------------------

    def _transfer(self, session, lcid, to_uin) -> "_Transfer | None":
        transfer = self._transfers.get((session.qq, wire.as_int(lcid)))
        if transfer is None or self.world.qq_of_uin(session.qq, to_uin) != transfer.sender:
            return None
        return transfer

    def accept(self, session, lcid, guid, to_uin) -> str:
        """get_file2: where the file is, or Refusal(102) (see the module doc)."""
        transfer = self._transfer(session, lcid, to_uin)
        if transfer is None or guid != transfer.name or transfer.state not in (OFFERED,
                                                                              ACCEPTED):
            log.info("get_file2 of %d refused: no such open transfer", session.qq)
            raise channel_refusal(102)
        transfer.state = ACCEPTED
        return "http://%s:%d/file/%s" % (self.address() + (transfer.ticket,))

    def refuse(self, session, lcid, to_uin) -> dict:
        """refuse_file2: the offer declined, or Refusal(102)."""
        transfer = self._transfer(session, lcid, to_uin)
        if transfer is None or transfer.state != OFFERED:
            log.info("refuse_file2 of %d refused: no such open transfer", session.qq)
            raise channel_refusal(102)
        transfer.state = REFUSED
        return {"retcode": 0, "result": "ok"}

    def served(self, ticket: str) -> "bytes | None":
        """The file server's ``/file/TICKET``: an accepted transfer's bytes."""
        transfer = self._by_ticket.get(ticket)
        if transfer is None or transfer.state != ACCEPTED:
            return None
        transfer.downloads += 1
        return transfer.data

    def offline_file(self, name: str, rkey, start) -> "bytes | None":
        """The file server's ``/NAME?rkey=RKEY&range=N``: the bytes from ``N``, or None."""
        kept = self._offline.get(rkey)
        offset = 0 if start is None else wire.as_int(start)
        if kept is None or kept.name != name or offset is None or offset > len(kept.data):
            return None
        kept.downloads += 1
        return kept.data[offset:]
