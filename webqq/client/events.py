"""The events WebQQClient emits, one frozen dataclass per kind.

events: values only; ``webqq.client`` creates them and hands them to listeners
(``client.on(kind, callback)``, ``client.add_listener(callback)``). ``kind`` is a class
attribute, so ``event.kind`` names the event without an isinstance chain. They never
carry a password or a session token.
"""
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Optional

from webqq.client.contacts import Contacts, Discussion, Group
from webqq.client.send_queue import OutgoingMessage
from webqq.qq import PollEvent

if TYPE_CHECKING:                                      # pragma: no cover
    from webqq.client.client import State

__all__ = ["ClientEvent", "StateChanged", "CaptchaRequired", "LoginFailed", "LoginStep",
           "Reconnecting", "Online", "ContactsLoaded", "Sender", "MessageReceived", "Notice",
           "Transmitting", "SendFinished"]


# --- events -----------------------------------------------------------------------------

class ClientEvent:
    """Base of every event the client emits; ``kind`` says which."""
    kind: ClassVar[str] = ""


@dataclass(frozen=True)
class StateChanged(ClientEvent):
    """The client moved from ``old`` to ``new`` (``State`` members) because of ``reason``."""
    kind: ClassVar[str] = "state"
    old: "State"
    new: "State"
    reason: str


@dataclass(frozen=True)
class CaptchaRequired(ClientEvent):
    """The server wants a verify code: the image is at ``path``; answer with
    ``client.enter_verify_code(code)``."""
    kind: ClassVar[str] = "captcha"
    path: str


@dataclass(frozen=True)
class LoginFailed(ClientEvent):
    """A login step was refused (``error``, a ``ProtocolError``); ``final`` means the
    client went OFFLINE and will not retry."""
    kind: ClassVar[str] = "login_failed"
    error: Exception
    final: bool


@dataclass(frozen=True)
class LoginStep(ClientEvent):
    """A step of logging in begins: ``"checking the account"`` (is a verify code
    needed?), ``"logging in"`` (the password, then the session) or ``"loading
    contacts"``; for a progress report."""
    kind: ClassVar[str] = "login_step"
    step: str


@dataclass(frozen=True)
class Reconnecting(ClientEvent):
    """Recovery attempt ``attempt`` of ``step`` (``"relink"``, ``"resume"``, ``"login"``)
    will run in ``delay`` seconds; ``at`` is ``IOLoop.time()`` when it was scheduled;
    ``reason`` says what failed or asked for it."""
    kind: ClassVar[str] = "reconnect"
    step: str
    attempt: int
    delay: float
    at: float
    reason: str = ""


@dataclass(frozen=True)
class Online(ClientEvent):
    """The client is ONLINE: ``resumed`` a saved session, ``relinked`` the current one,
    or (both False) logged in from scratch."""
    kind: ClassVar[str] = "online"
    resumed: bool
    relinked: bool


@dataclass(frozen=True)
class ContactsLoaded(ClientEvent):
    """The contact lists were (re)loaded."""
    kind: ClassVar[str] = "contacts"
    contacts: Contacts


@dataclass(frozen=True)
class Sender:
    """Who wrote a message: ``uin`` always; ``qq`` and ``name`` (remark, card or nick)
    when the contacts know them."""
    uin: int
    qq: Optional[int]
    name: str


@dataclass(frozen=True)
class MessageReceived(ClientEvent):
    """A message: ``chat`` is ``"buddy"``, ``"group"``, ``"discussion"`` or
    ``"session"``; ``message`` the ``webqq.qq`` event; ``text`` its plain text;
    ``group`` / ``discussion`` the chat's contact entry when known."""
    kind: ClassVar[str] = "message"
    chat: str
    message: PollEvent
    text: str
    sender: Sender
    group: Optional[Group] = None
    discussion: Optional[Discussion] = None


@dataclass(frozen=True)
class Notice(ClientEvent):
    """Any poll event that is not a message (``webqq.qq``: StatusChange, Kick,
    FriendRequest, GroupSystemEvent, ...)."""
    kind: ClassVar[str] = "notice"
    event: PollEvent


@dataclass(frozen=True)
class Transmitting(ClientEvent):
    """The first part of ``message`` is being handed to the network: from here a crash
    may leave it delivered. Again if that attempt never left (it is sent once more)."""
    kind: ClassVar[str] = "transmitting"
    message: OutgoingMessage


@dataclass(frozen=True)
class SendFinished(ClientEvent):
    """A message left the queue: ``message.status`` is SENT, FAILED or AMBIGUOUS."""
    kind: ClassVar[str] = "sent"
    message: OutgoingMessage
