"""The events WebQQClient emits, one frozen dataclass per kind.

events: values only; ``webqq.client`` creates them and hands them to listeners
(``client.on(kind, callback)``, ``client.add_listener(callback)``). ``kind`` is a class
attribute, so ``event.kind`` names the event without an isinstance chain. They never
carry a password or a session token.
"""
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Optional, Tuple

from webqq.client.contacts import Contacts, Discussion, Group
from webqq.client.pictures import MessagePiece, ReceivedPicture
from webqq.client.send_queue import OutgoingMessage
from webqq.qq import FileEvent, GroupSystemEvent, PollEvent

if TYPE_CHECKING:                                      # pragma: no cover
    from webqq.client.client import State

__all__ = ["ClientEvent", "StateChanged", "CaptchaRequired", "LoginFailed", "LoginStep",
           "Reconnecting", "Online", "ContactsLoaded", "Sender", "MessageReceived", "Notice",
           "Transmitting", "SendFinished", "FriendRequestReceived", "FriendChanged",
           "GroupMemberChanged", "GroupJoinRequest", "GroupJoinAnswered", "FileNotice"]


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
    ``"session"``; ``message`` the ``webqq.qq`` event; ``text`` its plain text (faces
    as ``[face:N]``, pictures as ``[image]``); ``group`` / ``discussion`` the chat's
    contact entry when known; ``pieces`` the content in order: texts, ``Face`` pieces
    and ``ReceivedPicture`` pieces (fetch one with ``client.pictures.fetch``)."""
    kind: ClassVar[str] = "message"
    chat: str
    message: PollEvent
    text: str
    sender: Sender
    group: Optional[Group] = None
    discussion: Optional[Discussion] = None
    pieces: Tuple[MessagePiece, ...] = ()

    @property
    def pictures(self) -> Tuple[ReceivedPicture, ...]:
        """The pictures among ``pieces``, in order."""
        return tuple(p for p in self.pieces if isinstance(p, ReceivedPicture))


@dataclass(frozen=True)
class Notice(ClientEvent):
    """Any poll event that is not a message (``webqq.qq``: StatusChange, Kick,
    FriendRequest, GroupSystemEvent, ...), as the server sent it. The friend, group
    and file events below follow their ``Notice`` with the client's reading of it."""
    kind: ClassVar[str] = "notice"
    event: PollEvent


@dataclass(frozen=True)
class FriendRequestReceived(ClientEvent):
    """Someone asks to be our friend (``system_message`` ``verify_required``).

    Answer with ``client.manage.answer_friend(qq, accept)``; ``accepting`` is True when
    the client's ``accept_friends`` policy is already accepting it.
    """
    kind: ClassVar[str] = "friend_request"
    qq: int
    uin: int
    message: str
    accepting: bool
    event: PollEvent


@dataclass(frozen=True)
class FriendChanged(ClientEvent):
    """The friend list changed; the contacts are reloaded soon after.

    Attributes:
        change: ``"added"`` (someone added us: ``added_buddy_sig``, or
            ``buddylist_change``), ``"accepted"`` (our own request was:
            ``verify_pass``), or ``"removed"`` (``buddylist_change``).
        uin: the friend's uin; ``qq`` their QQ number when known.
        name: their name when the contacts know it, else "".
        category: the friend category, when given.
    """
    kind: ClassVar[str] = "friend_change"
    change: str
    uin: int
    qq: Optional[int]
    name: str
    category: Optional[int]
    event: PollEvent


@dataclass(frozen=True)
class GroupMemberChanged(ClientEvent):
    """Someone joined or left a group (``sys_g_msg`` ``group_join``, ``group_leave``);
    the group's members are reloaded soon after.

    Attributes:
        change: ``"join"`` or ``"leave"``.
        sub_type: join: ``"approve"`` (let in at their request) or ``"invite"`` (added
            by an administrator); leave: ``"leave"`` (by themselves), ``"kick"`` (put
            out by an administrator) or ``"kick_me"`` (we were put out).
        gid, group: the group's gid, and its contact entry when known.
        member: who joined or left; ``operator``: who did it (the member themselves
            unless an administrator acted).
    """
    kind: ClassVar[str] = "group_member"
    change: str
    sub_type: str
    gid: int
    group: Optional[Group]
    member: Sender
    operator: Sender
    event: GroupSystemEvent


@dataclass(frozen=True)
class GroupJoinRequest(ClientEvent):
    """Someone asks to join a group we administer (``group_request_join``). Answer
    with ``client.manage.answer_group_request(event.event, accept)``."""
    kind: ClassVar[str] = "group_request"
    gid: int
    group: Optional[Group]
    requester: Sender
    message: str
    event: GroupSystemEvent


@dataclass(frozen=True)
class GroupJoinAnswered(ClientEvent):
    """Our own request to join a group was answered (``group_request_join_agree`` or
    ``_deny``): ``accepted``, by ``admin``, with ``message``."""
    kind: ClassVar[str] = "group_request_answer"
    gid: int
    group: Optional[Group]
    accepted: bool
    admin: Sender
    message: str
    event: GroupSystemEvent


@dataclass(frozen=True)
class FileNotice(ClientEvent):
    """A file event (§5.11), read.

    Attributes:
        change: ``"offer"`` (a friend sends a file: ``client.files.accept(event.event)``
            or ``.refuse``), ``"cancel"`` (they took it back), ``"ack"`` (they took
            ours), ``"offline"`` (a file left while we were away:
            ``client.files.download(event.event)``), ``"offline_notice"`` or
            ``"transfer"`` (progress of a transfer).
        sender: who sends it (uin 0 when the item names nobody).
        name: the file's name, "" when not given; ``size`` in bytes when given.
    """
    kind: ClassVar[str] = "file"
    change: str
    sender: Sender
    name: str
    size: Optional[int]
    event: FileEvent


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
