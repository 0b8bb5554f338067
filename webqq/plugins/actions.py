"""What plugins may ask of the account besides sending text: pictures, files, friend and
group requests, leaving a group, our group card.

actions: ``Actions``, the one object of the plugin layer that holds the client; the
daemon gives it to the ``Dispatcher`` and handlers reach it through their ``Context``
(``ctx.actions``, or the shortcuts ``ctx.fetch_picture``, ``ctx.accept_file``...). It
speaks the plugins' terms (QQ numbers, group numbers, the events they were handed) and
turns them into the client's calls; it never builds a request.

A message with pictures leaves here, not through the dispatcher's ``send``: the
daemon's saved outbox keeps text only, and a picture's bytes have no place in it (such
a message is not sent again after a restart).
"""
from pathlib import Path
from typing import Any, Union

from webqq.client.client import WebQQClient
from webqq.client.send_queue import OutgoingMessage
from webqq.qq import Ack, FileEvent, GroupSystemEvent, Outgoing

__all__ = ["Actions"]


def _inner(event: Any, kind: type) -> Any:
    """The client's poll event an ``Event`` (or the event itself) carries."""
    inner = event.data.get("event") if hasattr(event, "data") else event
    if not isinstance(inner, kind):
        raise ValueError("expected an event carrying a %s, got %r" % (kind.__name__, event))
    return inner


class Actions:
    """The account's actions, in plugin terms.

    Args:
        client: the daemon's ``WebQQClient``.
    """

    def __init__(self, client: WebQQClient) -> None:
        self._client = client

    def send(self, chat: str, target: int, content: Outgoing) -> OutgoingMessage:
        """Queue ``content`` (texts, ``Face`` and ``UploadPicture`` pieces) for a
        friend's QQ number (``"buddy"``), a group's number or a discussion's id.

        Raises:
            ValueError: an unknown chat, or a picture the chat cannot carry
                (``PictureError``).
        """
        if chat not in ("buddy", "group", "discussion"):
            raise ValueError("%s messages can only be replied to" % chat)
        return getattr(self._client, "send_" + chat)(target, content)

    def reply(self, message: Any, content: Outgoing) -> OutgoingMessage:
        """Answer a plugin ``Message`` in its own chat with ``content``."""
        return self._client.reply(message.raw, content)

    async def fetch_picture(self, picture: Any) -> bytes:
        """The bytes of a picture of ``Message.pictures`` (fetched once, then cached).

        Raises:
            see ``webqq.client.pictures.Pictures.fetch``.
        """
        return await self._client.pictures.fetch(picture)

    async def accept_file(self, event: Any) -> Path:
        """Take the file of a ``"file"`` event whose ``change`` is ``"offer"``; returns
        where it was written."""
        return await self._client.files.accept(_inner(event, FileEvent))

    async def refuse_file(self, event: Any) -> None:
        """Decline the file of a ``"file"`` event whose ``change`` is ``"offer"``."""
        await self._client.files.refuse(_inner(event, FileEvent))

    async def download_file(self, event: Any) -> Path:
        """Fetch the file of a ``"file"`` event whose ``change`` is ``"offline"``;
        returns where it was written."""
        return await self._client.files.download(_inner(event, FileEvent))

    async def answer_friend_request(self, request: Union[int, Any], accept: bool, *,
                                    markname: str = "", reason: str = "") -> Ack:
        """Accept (and add back) or refuse a friend request: a ``"friend_request"``
        event, or the requester's QQ number."""
        qq = request if isinstance(request, int) else request.data["qq"]
        return await self._client.manage.answer_friend(qq, accept, markname=markname,
                                                       reason=reason)

    async def answer_group_request(self, event: Any, accept: bool, *,
                                   reason: str = "") -> Ack:
        """Let in or refuse the requester of a ``"group_request"`` event (we must
        administer the group)."""
        return await self._client.manage.answer_group_request(
            _inner(event, GroupSystemEvent), accept, reason=reason)

    async def leave_group(self, group: int) -> Ack:
        """Leave the group of this number."""
        return await self._client.manage.leave_group(group)

    async def set_group_card(self, group: int, card: str) -> Ack:
        """Set our own card in the group of this number ("" clears it)."""
        return await self._client.manage.set_group_card(group, card)
