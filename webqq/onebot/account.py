"""The OneBot actions beyond messages: received pictures, files, friend and group
requests, leaving a group, our group card; and the OneBot actions WebQQ cannot do.

account: ``AccountActions``, a part of ``webqq.onebot.actions.Actions`` (which mixes it
in: one ``do_NAME`` per action, ``Actions.call`` runs them), and ``UNSUPPORTED``. Each
action goes through the client (``client.pictures``, ``client.files``,
``client.manage``); what a flag or file id means is the server's to remember
(``OneBotApi.group_requests``, ``OneBotApi.files``).

The names, where OneBot v11 has none (documented in docs/media.rst):

* ``accept_file(file_id)``: take a file of an ``offline_file`` notice (``get_file2``
  for an offer, the offline-file server for one left while we were away); answers
  ``{"file": PATH, "name", "size", "url"}``. No OneBot implementation has such an
  action (go-cqhttp's offline files arrive already taken).
* ``refuse_file(file_id)``: decline an offer (``refuse_file2``).

What it must never do: answer for the client (every call is the client's), or let a
client error escape as anything but a ``OneBotError``.
"""
import asyncio
from typing import TYPE_CHECKING, Any, Awaitable, Dict, Optional

from webqq.client.calls import NotOnline, Unavailable
from webqq.http.errors import HTTPStreamError
from webqq.onebot import notices
from webqq.onebot.mapping import BadParams, OneBotError, Retcode, is_picture_name
from webqq.qq import ProtocolError

if TYPE_CHECKING:                                   # pragma: no cover
    from webqq.onebot.server import OneBotApi

__all__ = ["AccountActions", "UNSUPPORTED"]

#: OneBot v11 actions WebQQ cannot do, and why: each answers retcode 102
#: (``Retcode.UNSUPPORTED``) with a message naming it. No WebQQ client of 2013 shows an
#: endpoint for any of them (docs/media.rst §7).
UNSUPPORTED = {
    "delete_msg": "WebQQ cannot recall a message",
    "get_forward_msg": "WebQQ has no forwarded messages",
    "send_like": "WebQQ cannot send likes",
    "set_group_kick": "no 2013 endpoint removes a member",
    "set_group_ban": "no 2013 endpoint mutes a member",
    "set_group_anonymous_ban": "WebQQ has no anonymous members",
    "set_group_whole_ban": "no 2013 endpoint mutes a group",
    "set_group_admin": "no 2013 endpoint names administrators",
    "set_group_anonymous": "WebQQ has no anonymous members",
    "set_group_name": "no 2013 endpoint renames a group",
    "set_group_special_title": "WebQQ has no special titles",
    "get_group_honor_info": "WebQQ has no group honours",
    "get_cookies": "the session's cookies stay inside webqq",
    "get_csrf_token": "the session's tokens stay inside webqq",
    "get_credentials": "the session's cookies and tokens stay inside webqq",
    "get_record": "WebQQ has no voice messages",
    "clean_cache": "the caches clean themselves (size and age caps)",
}


async def _through_client(what: str, call: Awaitable[Any]) -> Any:
    """``await call``, a client error turned into a ``OneBotError`` naming ``what``."""
    try:
        return await call
    except NotOnline:
        raise OneBotError("%s: the client is not online" % what) from None
    except Unavailable as error:
        raise BadParams("%s: %s" % (what, error)) from None
    except (ProtocolError, HTTPStreamError) as error:
        raise OneBotError("%s: %s" % (what, error)) from None


class AccountActions:
    """The actions of the module doc, for ``Actions`` to mix in (it provides ``api``,
    ``client``, ``_int``, ``_flag`` and ``_group``)."""

    api: "OneBotApi"
    client: Any

    # -- pictures ----------------------------------------------------------------------

    async def do_can_send_image(self, params: Dict[str, Any]) -> Dict[str, bool]:
        return {"yes": True}

    async def do_get_image(self, params: Dict[str, Any]) -> Dict[str, Any]:
        """A received picture by its segment's ``file``: fetched (once), and answered
        with where the cache keeps it (``file``, which a bot on this machine may read),
        its ``size``, ``filename`` and ``url``."""
        name = params.get("file")
        if not isinstance(name, str) or not is_picture_name(name):
            raise BadParams("file must be the file of an image segment received "
                            "(40 hex digits and .image)")
        picture = self.api.pictures.find(name)
        if picture is None:
            raise BadParams("no picture received has the file %s" % name)
        data = await _through_client("get_image", self.client.pictures.fetch(picture))
        kept = self.client.pictures.cache.directory / picture.key
        return {"file": str(kept) if kept.is_file() else "", "filename": name,
                "size": len(data), "url": self.api.media_url("images", name)}

    # -- files -------------------------------------------------------------------------

    async def do_accept_file(self, params: Dict[str, Any]) -> Dict[str, Any]:
        """webqq's own action: take the file of an ``offline_file`` notice."""
        file_id = params.get("file_id")
        offer = self.api.files.get(file_id)
        if offer.path is None:
            if offer.gone is not None:
                raise OneBotError("file %s cannot be taken: %s" % (file_id, offer.gone))
            if offer.taking is None:                # two calls at once take it once
                notice = offer.notice
                take = self.client.files.accept if notice.change == "offer" \
                    else self.client.files.download
                offer.taking = asyncio.ensure_future(
                    _through_client("accept_file", take(notice.event)))
            taking = offer.taking
            try:
                offer.path = await asyncio.shield(taking)
            finally:
                if offer.taking is taking and taking.done():
                    offer.taking = None             # a failure may be tried again
        return {"file": str(offer.path), "name": offer.notice.name,
                "size": offer.path.stat().st_size,
                "url": self.api.media_url("files", file_id)}

    async def do_refuse_file(self, params: Dict[str, Any]) -> None:
        """webqq's own action: decline the file a friend offers."""
        file_id = params.get("file_id")
        offer = self.api.files.get(file_id)
        if offer.notice.change != "offer":
            raise BadParams("file %s was left offline: there is no offer to refuse"
                            % file_id)
        if offer.path is not None or offer.gone is not None:
            raise OneBotError("file %s cannot be refused: %s" % (
                file_id, "it was taken" if offer.path is not None else offer.gone))
        await _through_client("refuse_file", self.client.files.refuse(offer.notice.event))
        offer.gone = "it was refused"

    # -- requests ----------------------------------------------------------------------

    async def do_set_friend_add_request(self, params: Dict[str, Any]) -> None:
        """Accept (and add back, with ``remark`` as our name for them) or refuse."""
        flag = params.get("flag")
        qq = notices.qq_of_friend_flag(flag) if isinstance(flag, str) else None
        if qq is None:
            raise BadParams("flag must be the flag of a friend request event")
        approve = self._flag(params, "approve", True)
        await _through_client("set_friend_add_request", self.client.manage.answer_friend(
            qq, approve, markname=str(params.get("remark") or "")))

    async def do_set_group_add_request(self, params: Dict[str, Any]) -> None:
        """Let a requester into a group we administer, or refuse them with ``reason``.
        Only ``sub_type`` add: WebQQ has no invitations to answer."""
        sub_type = params.get("sub_type", params.get("type", "add"))
        if sub_type != "add":
            raise OneBotError("set_group_add_request: sub_type %r is not supported: WebQQ "
                              "has no group invitations to answer" % (sub_type,),
                              Retcode.UNSUPPORTED)
        request = self.api.group_requests.get(params.get("flag"))
        if request is None:
            raise BadParams("unknown flag %r (group requests are remembered in memory: "
                            "not across a restart or an [api] reload)"
                            % (params.get("flag"),))
        await _through_client("set_group_add_request",
                              self.client.manage.answer_group_request(
                                  request, self._flag(params, "approve", True),
                                  reason=str(params.get("reason") or "")))

    # -- groups ------------------------------------------------------------------------

    async def do_set_group_leave(self, params: Dict[str, Any]) -> None:
        """Leave a group (``quit_group2``); ``is_dismiss`` is not supported."""
        if self._flag(params, "is_dismiss"):
            raise OneBotError("set_group_leave: is_dismiss is not supported: no 2013 "
                              "endpoint disbands a group", Retcode.UNSUPPORTED)
        group = self._group(params)
        await _through_client("set_group_leave", self.client.manage.leave_group(group))

    async def do_set_group_card(self, params: Dict[str, Any]) -> None:
        """Set our own card (``update_group_business_card2``); another member's card is
        not supported (no 2013 endpoint)."""
        group = self._group(params)
        user_id = self._int(params, "user_id")
        if user_id != self.api.self_id:
            raise OneBotError("set_group_card: WebQQ sets only the account's own card "
                              "(user_id %d), not %d's" % (self.api.self_id, user_id),
                              Retcode.UNSUPPORTED)
        await _through_client("set_group_card", self.client.manage.set_group_card(
            group, str(params.get("card") or "")))

    # -- what WebQQ cannot do -----------------------------------------------------------

    @staticmethod
    def unsupported(name: str) -> Optional[str]:
        """Why WebQQ cannot do the OneBot action ``name``, or None."""
        return UNSUPPORTED.get(name)
