"""One function per request of the WebQQ session: ``build_<endpoint>(...) -> Request``.

builders: no I/O. Each returns a new ``urllib.request.Request`` (method, URL with the
query in the documented order, an ``application/x-www-form-urlencoded`` body with a JSON
``r`` field, plus ``clientid``/``psessionid`` on ``channel`` POSTs, and the Referer/Origin
headers of §1.4) and keeps no state. Must never read the clock or draw a random number:
timestamps, random floats, ``clientid`` and ``msg_id`` are arguments. Era A (spring
2013) is the default; ``era=Era.B`` adds ``login_sig`` and friends. A builder raises
``ValueError`` for an argument outside the protocol (an unknown status, an Era B login
without ``login_sig``). The order of a session is §2.2; each reply is read by the
``parse_<endpoint>`` its docstring names.
"""
import urllib.parse
from typing import Any, Dict, Optional, Tuple
from urllib.request import Request

from webqq.qq.content import CFace, DEFAULT_FONT, Font, OffPic, Outgoing, encode_content
from webqq.qq.kinds import Era
from webqq.qq.request import (D_CHANNEL, D_ORIGIN, S_API, S_ORIGIN, channel_post, http_get,
                              s_post)

__all__ = [
    "APPID", "DISCUSSION_LIST_HOSTS", "D_REFERER", "D_REFERER3", "D_REFERER_SSL",
    "S_REFERER", "S_REFERER3",
    "D_ORIGIN", "S_ORIGIN", "LOGIN_UI_REFERER_A", "LOGIN_UI_REFERER_B", "STATUSES",
    "WEBQQ_TYPE_ONLINE", "WEBQQ_TYPE_HIDDEN", "DEFAULT_FACE",
    "build_login_page", "build_check", "build_captcha", "build_login", "build_check_sig",
    "build_login2", "build_friends", "build_groups", "build_group_info",
    "build_discussions", "build_discussion_info", "build_friend_uin",
    "build_online_buddies", "build_poll", "build_heartbeat", "build_send_buddy",
    "build_send_group", "build_send_discussion", "build_c2c_sig", "build_send_session",
    "build_change_status", "build_logout", "build_allow_and_add",
    "build_allow_added_request", "build_deny_added_request",
]


# --- constants (§1.4, §2.1) --------------------------------------------------------------

APPID = 1003903  # WebQQ's application id at ptlogin2

D_REFERER = "http://d.web2.qq.com/proxy.html?v=20110331002&callback=1&id=2"
D_REFERER3 = "http://d.web2.qq.com/proxy.html?v=20110331002&callback=1&id=3"
D_REFERER_SSL = "https://d.web2.qq.com/cfproxy.html?v=20110331002&callback=1"
S_REFERER = "http://s.web2.qq.com/proxy.html?v=20110412001&callback=1&id=1"
S_REFERER3 = "http://s.web2.qq.com/proxy.html?v=20110412001&callback=1&id=3"
LOGIN_UI_REFERER_B = (
    "https://ui.ptlogin2.qq.com/cgi-bin/login?daid=164&target=self&style=5"
    "&mibao_css=m_webqq&appid=1003903&enable_qlogin=0&no_verifyimg=1"
    "&s_url=http%3A%2F%2Fweb2.qq.com%2Floginproxy.html&f_url=loginerroralert"
    "&strong_login=1&login_state=10&t=20130723001")
LOGIN_UI_REFERER_A = (
    "https://ui.ptlogin2.qq.com/cgi-bin/login?target=self&style=5&mibao_css=m_webqq"
    "&appid=1003903&enable_qlogin=0&no_verifyimg=1"
    "&s_url=http%3A%2F%2Fweb.qq.com%2Floginproxy.html&f_url=loginerroralert"
    "&strong_login=1&login_state=10&t=20130221001")

_LOGIN_PAGE_URL = "https://ui.ptlogin2.qq.com/cgi-bin/login"
_CHECK_URL = "http://check.ptlogin2.qq.com/check"
_CAPTCHA_URL = "https://ssl.captcha.qq.com/getimage"
_LOGIN_URL = "https://ssl.ptlogin2.qq.com/login"
_HEARTBEAT_URL = "http://web.qq.com/web2/get_msg_tip"

# Statuses of login2, change_status2 and the poll's status changes (§3.6, §3.22).
STATUSES = ("online", "away", "busy", "silent", "hidden", "callme")
# login's webqq_type: the status to start in (§3.4).
WEBQQ_TYPE_ONLINE = 10
WEBQQ_TYPE_HIDDEN = 40
# The avatar id sends carry; the server ignores it (§8.13). 564 is PB's.
DEFAULT_FACE = 564
# The JS versions the login pages of each era declared (§3.2, §3.4).
_JS_VER_A = 10021
_JS_VER_B = 10040



# --- helpers ---------------------------------------------------------------------------


def _seconds(now: float) -> int:
    """``t`` as whole unix seconds: what webqq-core sent on every call that has one,
    and pual_bot on ``get_group_info_ext2`` (docs/protocol.rst §3)."""
    return int(now)


def _check_status(status: str) -> str:
    if status not in STATUSES:
        raise ValueError("unknown status %r; expected one of %s"
                         % (status, ", ".join(STATUSES)))
    return status


# --- the requests, in the order of a session -------------------------------------------

def build_login_page() -> Request:
    """``GET ui.ptlogin2 /cgi-bin/login``: the page carrying ``g_login_sig`` (§3.1, Era B).

    Returns:
        The request; read its reply with ``parse_login_sig``.
    """
    return http_get(_LOGIN_PAGE_URL, [
        ("daid", 164), ("target", "self"), ("style", 5), ("mibao_css", "m_webqq"),
        ("appid", APPID), ("enable_qlogin", 0), ("no_verifyimg", 1),
        ("s_url", "http://web2.qq.com/loginproxy.html"), ("f_url", "loginerroralert"),
        ("strong_login", 1), ("login_state", 10), ("t", 20130723001)])


def build_check(qq: int, r: float, *, era: Era = Era.A,
                login_sig: Optional[str] = None) -> Request:
    """``GET check.ptlogin2 /check``: does this login need a captcha? (§3.2)

    Args:
        qq: the account's QQ number.
        r: a random float in [0, 1).
        era: ``Era.B`` adds ``u1``, ``login_sig``, ``js_ver``, ``js_type`` and the
            login-page Referer.
        login_sig: Era B: the value of ``parse_login_sig``.

    Returns:
        The request; read its reply with ``parse_check``.

    Raises:
        ValueError: ``era`` is B and ``login_sig`` is missing.
    """
    params = [("uin", qq), ("appid", APPID), ("r", r)]
    if era is Era.A:
        return http_get(_CHECK_URL, params)
    if not login_sig:
        raise ValueError("an Era B check needs the login_sig of the login page")
    params += [("u1", "http://web2.qq.com/loginproxy.html"), ("login_sig", login_sig),
               ("js_ver", _JS_VER_B), ("js_type", 0)]
    return http_get(_CHECK_URL, params, {"Referer": LOGIN_UI_REFERER_B})


def build_captcha(qq: int, r: float) -> Request:
    """``GET ssl.captcha /getimage``: the captcha picture (§3.3), with the parameters
    pual_bot sent (no ``vc_type``: none of the 2013 clients sent one).

    Args:
        qq: the account's QQ number.
        r: a random float in [0, 1).

    Returns:
        The request; its reply body is the image itself (JPEG) and it sets the
        ``verifysession`` cookie that ``login`` needs.
    """
    return http_get(_CAPTCHA_URL, [("aid", APPID), ("r", r), ("uin", qq)])


def build_login(qq: int, encrypted_password: str, verifycode: str, *, era: Era = Era.A,
                login_sig: Optional[str] = None, after_captcha: bool = False,
                webqq_type: int = WEBQQ_TYPE_ONLINE) -> Request:
    """``GET ssl.ptlogin2 /login``: check the password (§3.4).

    Era A sends PB@54b74d7's parameters in its order; Era B inserts ``daid=164`` after
    ``ptlang`` and ``action=4-5-8246`` after ``fp``, uses ``js_ver=10040`` and the
    ``loginproxy`` ``u1``, appends ``login_sig`` and sends the login page as Referer.

    Args:
        qq: the account's QQ number.
        encrypted_password: ``encrypt_password(password, uin_bytes, verifycode)``.
        verifycode: the code of ``parse_check`` or the captcha answer, as typed.
        era: ``Era.A`` (default) or ``Era.B``.
        login_sig: Era B: the value of ``parse_login_sig``.
        after_captcha: Era A: send ``LOGIN_UI_REFERER_A`` as PB did after a captcha.
        webqq_type: the initial status, ``WEBQQ_TYPE_ONLINE`` or ``WEBQQ_TYPE_HIDDEN``.

    Returns:
        The request; read its reply with ``parse_login``.

    Raises:
        ValueError: ``era`` is B and ``login_sig`` is missing.
    """
    if era is Era.B and not login_sig:
        raise ValueError("an Era B login needs the login_sig of the login page")
    era_b = era is Era.B
    u1 = ("http://www.qq.com/loginproxy.html?login2qq=1&webqq_type=10" if era_b
          else "http://www.qq.com")
    params = [("u", qq), ("p", encrypted_password), ("verifycode", verifycode),
              ("webqq_type", webqq_type), ("remember_uin", 1), ("login2qq", 1),
              ("aid", APPID), ("u1", u1), ("h", 1), ("ptredirect", 0), ("ptlang", 2052)]
    params += [("daid", 164)] if era_b else []
    params += [("from_ui", 1), ("pttype", 1), ("dumy", ""), ("fp", "loginerroralert")]
    params += [("action", "4-5-8246")] if era_b else []
    params += [("mibao_css", "m_webqq"), ("t", 1), ("g", 1), ("js_type", 0),
               ("js_ver", _JS_VER_B if era_b else _JS_VER_A)]
    params += [("login_sig", login_sig)] if era_b else []
    if era_b:
        headers = {"Referer": LOGIN_UI_REFERER_B}
    elif after_captcha:
        headers = {"Referer": LOGIN_UI_REFERER_A}
    else:
        headers = {}
    return http_get(_LOGIN_URL, params, headers)


def build_check_sig(url: str) -> Request:
    """``GET ptlogin4.web2 /check_sig``: the Era B hop that sets ``p_skey`` (§3.5).

    Args:
        url: ``LoginResult.check_sig_url``, fetched as is.

    Returns:
        The request; the reply is a 302 whose cookies matter, its body does not.

    Raises:
        ValueError: ``url`` is not an http(s) URL.
    """
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise ValueError("check_sig URL must be http(s): %r" % url[:80])
    return Request(url, headers={"Referer": LOGIN_UI_REFERER_B}, method="GET")


def build_login2(ptwebqq: str, *, clientid: int, status: str = "online",
                 psessionid: Optional[str] = None) -> Request:
    """``POST d.web2 /channel/login2``: open the chat session, or relink it (§3.6).

    Args:
        ptwebqq: the current value of the ``ptwebqq`` cookie.
        clientid: this login's 8-digit client id.
        status: one of ``STATUSES``.
        psessionid: None at first login (sent as ``null``); the current one to relink.

    Returns:
        The request; read its reply with ``parse_login2``.

    Raises:
        ValueError: unknown ``status``.
    """
    r = {"status": _check_status(status), "ptwebqq": ptwebqq, "passwd_sig": "",
         "clientid": str(clientid), "psessionid": psessionid}
    return channel_post("login2", r, clientid=clientid,
                         psessionid="null" if psessionid is None else psessionid,
                         referer=D_REFERER3)


def build_friends(*, vfwebqq: str, hash_value: Optional[str] = None) -> Request:
    """``POST s.web2 /api/get_user_friends2``: the friend list (§3.7).

    Args:
        vfwebqq: from ``Login2Result``.
        hash_value: ``friends_hash(qq, ptwebqq, variant)``; None sends PB's Era A
            request, which has no ``hash``.

    Returns:
        The request; read its reply with ``parse_friends``.
    """
    r = {"h": "hello"}
    if hash_value is not None:
        r["hash"] = hash_value
    r["vfwebqq"] = vfwebqq
    return s_post("get_user_friends2", r, S_REFERER)


def build_groups(*, vfwebqq: str) -> Request:
    """``POST s.web2 /api/get_group_name_list_mask2``: the group list (§3.8).

    Args:
        vfwebqq: from ``Login2Result``.

    Returns:
        The request; read its reply with ``parse_groups``.
    """
    return s_post("get_group_name_list_mask2", {"vfwebqq": vfwebqq}, S_REFERER)


def build_group_info(code: int, *, vfwebqq: str, t: float) -> Request:
    """``GET s.web2 /api/get_group_info_ext2``: a group's members and cards (§3.9).

    Args:
        code: the group's code (``Group.code``, poll ``group_code``), not its gid.
        vfwebqq: from ``Login2Result``.
        t: the time now, unix seconds (``time.time()``); sent as whole seconds.

    Returns:
        The request; read its reply with ``parse_group_info``.
    """
    return http_get(S_API + "get_group_info_ext2",
                    [("gcode", code), ("vfwebqq", vfwebqq), ("t", _seconds(t))],
                    {"Referer": D_REFERER3})


#: The two addresses of the discussion list (docs/protocol.rst §3.10): webqq-core's and
#: the older pidgin-lwqq's on d.web2, pidgin-lwqq's from June 2013 on s.web2.
DISCUSSION_LIST_HOSTS = ("d.web2", "s.web2")


def build_discussions(*, clientid: int, psessionid: str, vfwebqq: str, t: float,
                      host: str = "d.web2") -> Request:
    """The discussion groups (docs/protocol.rst §3.10): ``GET d.web2
    /channel/get_discu_list_new2`` with ``D_REFERER`` (webqq-core), or, with
    ``host="s.web2"``, ``GET s.web2 /api/get_discus_list`` with ``S_REFERER``
    (pidgin-lwqq from June 2013). Both take the same query and give the same reply.

    Args:
        clientid: this login's client id.
        psessionid: from ``Login2Result``.
        vfwebqq: from ``Login2Result``.
        t: the time now, unix seconds (``time.time()``); sent as whole seconds.
        host: one of ``DISCUSSION_LIST_HOSTS``.

    Returns:
        The request; read its reply with ``parse_discussions``.

    Raises:
        ValueError: an unknown ``host``.
    """
    if host not in DISCUSSION_LIST_HOSTS:
        raise ValueError("unknown discussion list host %r; expected one of %s"
                         % (host, ", ".join(DISCUSSION_LIST_HOSTS)))
    query = [("clientid", clientid), ("psessionid", psessionid), ("vfwebqq", vfwebqq),
             ("t", _seconds(t))]
    if host == "d.web2":
        return http_get(D_CHANNEL + "get_discu_list_new2", query, {"Referer": D_REFERER})
    return http_get(S_API + "get_discus_list", query, {"Referer": S_REFERER})


def build_discussion_info(did: int, *, clientid: int, psessionid: str, vfwebqq: str,
                          t: float) -> Request:
    """``GET d.web2 /channel/get_discu_info``: a discussion's members (§3.11).

    Args:
        did: the discussion id.
        clientid: this login's client id.
        psessionid: from ``Login2Result``.
        vfwebqq: from ``Login2Result``.
        t: the time now, unix seconds (``time.time()``); sent as whole seconds.

    Returns:
        The request; read its reply with ``parse_discussion_info``.
    """
    return http_get(D_CHANNEL + "get_discu_info",
                [("did", did), ("clientid", clientid), ("psessionid", psessionid),
                 ("vfwebqq", vfwebqq), ("t", _seconds(t))], {"Referer": D_REFERER})


def build_friend_uin(uin: int, *, vfwebqq: str, t: float, lookup_type: int = 1) -> Request:
    """``GET s.web2 /api/get_friend_uin2``: the QQ number behind a uin (§3.12).

    Ask one at a time: MC warns that parallel lookups get an account black-listed.

    Args:
        uin: a friend's or member's uin, or a group code.
        vfwebqq: from ``Login2Result``.
        t: the time now, unix seconds (``time.time()``); sent as whole seconds.
        lookup_type: ``1`` for a user (TW), ``4`` for a group code.

    Returns:
        The request; read its reply with ``parse_friend_uin``.
    """
    return http_get(S_API + "get_friend_uin2",
                [("tuin", uin), ("verifysession", ""), ("type", lookup_type), ("code", ""),
                 ("vfwebqq", vfwebqq), ("t", _seconds(t))], {"Referer": S_REFERER3})


def build_online_buddies(*, clientid: int, psessionid: str, t: float) -> Request:
    """``GET d.web2 /channel/get_online_buddies2``: which friends are online (§3.13).

    Args:
        clientid: this login's client id.
        psessionid: from ``Login2Result``.
        t: the time now, unix seconds (``time.time()``); sent as whole seconds.

    Returns:
        The request; read its reply with ``parse_online_buddies``.
    """
    return http_get(D_CHANNEL + "get_online_buddies2",
                    [("clientid", clientid), ("psessionid", psessionid), ("t", _seconds(t))],
                {"Referer": D_REFERER})


def build_poll(*, clientid: int, psessionid: str) -> Request:
    """``POST d.web2 /channel/poll2``: the long poll (§3.15); issue it again after
    every reply.

    Args:
        clientid: this login's client id.
        psessionid: from ``Login2Result``.

    Returns:
        The request; read its reply with ``parse_poll``.
    """
    r = {"clientid": clientid, "psessionid": psessionid, "key": 0, "ids": []}
    return channel_post("poll2", r, clientid=clientid, psessionid=psessionid,
                         referer=D_REFERER)


def build_heartbeat(*, rc: int, t: float, lv: int = 2) -> Request:
    """``GET web.qq.com /web2/get_msg_tip``: the 60-second heartbeat (§3.16).

    No source sends a Referer with it, and none reads the reply.

    Args:
        rc: a counter, increased by one per beat.
        t: the time now, unix seconds (``time.time()``); sent in milliseconds, as
            twqq did.
        lv: ``2`` (PB, spring 2013) or ``3``.

    Returns:
        The request; ``parse_heartbeat`` reads its reply, failures are harmless.
    """
    return http_get(_HEARTBEAT_URL, [("uin", ""), ("tp", 1), ("id", 0), ("retype", 1),
                                     ("rc", rc), ("lv", lv), ("t", int(t * 1000))])


def _pictures_of(content: Outgoing) -> Tuple[int, int]:
    """How many ``OffPic`` and ``CFace`` pieces ``content`` holds."""
    if isinstance(content, str):
        return 0, 0
    return (sum(isinstance(piece, OffPic) for piece in content),
            sum(isinstance(piece, CFace) for piece in content))


def _gface(content: Outgoing, key: Optional[str], sig: Optional[str],
           endpoint: str) -> Dict[str, str]:
    """The ``key`` and ``sig`` a send with group pictures carries (§3.18), or nothing
    for one without."""
    offpics, cfaces = _pictures_of(content)
    if offpics:
        raise ValueError("%s carries group pictures (CFace), not OffPic" % endpoint)
    if not cfaces:
        return {}
    if not key or not sig:
        raise ValueError("%s with a group picture needs the key and sig of "
                         "get_gface_sig2" % endpoint)
    return {"key": key, "sig": sig}


def build_send_buddy(to_uin: int, content: Outgoing, *, msg_id: int, clientid: int,
                     psessionid: str, font: Font = DEFAULT_FONT,
                     face: int = DEFAULT_FACE) -> Request:
    """``POST d.web2 /channel/send_buddy_msg2``: message a friend (§3.17, §7).

    Args:
        to_uin: the friend's uin (``BuddyMessage.from_uin``).
        content: a text, or texts, ``Face`` and ``OffPic`` pieces (a friend's picture
            is uploaded with ``upload_offline_pic`` first); split long texts first with
            ``split_content``.
        msg_id: the next value of this login's message counter (§7.2).
        clientid: this login's client id.
        psessionid: from ``Login2Result``.
        font: the font the recipient sees.
        face: our avatar id (ignored by the server).

    Returns:
        The request; read its reply with ``parse_send``.

    Raises:
        ValueError: a ``CFace`` piece (group pictures go to groups and discussions).
    """
    if _pictures_of(content)[1]:
        raise ValueError("send_buddy_msg2 carries a friend's picture as OffPic, not CFace")
    r = {"to": to_uin, "face": face, "content": encode_content(content, font),
         "msg_id": msg_id, "clientid": clientid, "psessionid": psessionid}
    return channel_post("send_buddy_msg2", r, clientid=clientid, psessionid=psessionid,
                        referer=D_REFERER3)


def build_send_group(gid: int, content: Outgoing, *, msg_id: int, clientid: int,
                     psessionid: str, font: Font = DEFAULT_FONT,
                     group_code: Optional[int] = None, key: Optional[str] = None,
                     sig: Optional[str] = None) -> Request:
    """``POST d.web2 /channel/send_qun_msg2``: message a group (§3.18, §7).

    Args:
        gid: the group's gid (``GroupMessage.gid``, ``Group.gid``), not its code.
        content: a text, or texts, ``Face`` and ``CFace`` pieces.
        msg_id: the next value of this login's message counter (§7.2).
        clientid: this login's client id.
        psessionid: from ``Login2Result``.
        font: the font the members see.
        group_code, key, sig: with a ``CFace`` piece: the group's code and the
            ``GFaceSig`` of ``get_gface_sig2``; ``r`` then carries them after
            ``group_uin`` as IQ and LQ sent them. Unused without one.

    Returns:
        The request; read its reply with ``parse_send``.

    Raises:
        ValueError: an ``OffPic`` piece, or a ``CFace`` without the code, key or sig.
    """
    r: Dict[str, Any] = {"group_uin": gid}
    pictures = _gface(content, key, sig, "send_qun_msg2")
    if pictures:
        if group_code is None:
            raise ValueError("send_qun_msg2 with a group picture needs the group code")
        r["group_code"] = group_code
        r.update(pictures)
    r.update({"content": encode_content(content, font), "msg_id": msg_id,
              "clientid": clientid, "psessionid": psessionid})
    return channel_post("send_qun_msg2", r, clientid=clientid, psessionid=psessionid,
                        referer=D_REFERER3, psessionid_first=True)


def build_send_discussion(did: int, content: Outgoing, *, msg_id: int, clientid: int,
                          psessionid: str, font: Font = DEFAULT_FONT,
                          key: Optional[str] = None, sig: Optional[str] = None) -> Request:
    """``POST d.web2 /channel/send_discu_msg2``: message a discussion (§3.21, §7).

    Args:
        did: the discussion id (sent as a JSON string, as in the 2013 samples).
        content: a text, or texts, ``Face`` and ``CFace`` pieces.
        msg_id: the next value of this login's message counter (§7.2).
        clientid: this login's client id.
        psessionid: from ``Login2Result``.
        font: the font the members see.
        key, sig: with a ``CFace`` piece: the ``GFaceSig`` of ``get_gface_sig2``,
            carried after ``did`` (LQ, 2013-05-27). Unused without one.

    Returns:
        The request; read its reply with ``parse_send``.

    Raises:
        ValueError: an ``OffPic`` piece, or a ``CFace`` without the key and sig.
    """
    r: Dict[str, Any] = {"did": str(did)}
    r.update(_gface(content, key, sig, "send_discu_msg2"))
    r.update({"content": encode_content(content, font), "msg_id": msg_id,
              "clientid": clientid, "psessionid": psessionid})
    return channel_post("send_discu_msg2", r, clientid=clientid, psessionid=psessionid,
                        referer=D_REFERER)


def build_c2c_sig(via_id: int, to_uin: int, *, service_type: int, clientid: int,
                  psessionid: str, t: float) -> Request:
    """``GET d.web2 /channel/get_c2cmsg_sig2``: the signature for a temporary session
    (§3.19). Cache the answer per peer.

    Args:
        via_id: ``SessionMessage.via_id``, unchanged (a group gid or a did).
        to_uin: the peer's uin.
        service_type: ``0`` through a group, ``1`` through a discussion.
        clientid: this login's client id.
        psessionid: from ``Login2Result``.
        t: the time now, unix seconds (``time.time()``); sent as whole seconds.

    Returns:
        The request; read its reply with ``parse_c2c_sig``.
    """
    return http_get(D_CHANNEL + "get_c2cmsg_sig2",
                [("id", via_id), ("to_uin", to_uin), ("service_type", service_type),
                 ("clientid", clientid), ("psessionid", psessionid), ("t", _seconds(t))],
                {"Referer": D_REFERER3})


def build_send_session(to_uin: int, content: Outgoing, *, group_sig: str, msg_id: int,
                       clientid: int, psessionid: str, service_type: int = 0,
                       font: Font = DEFAULT_FONT, face: int = DEFAULT_FACE) -> Request:
    """``POST d.web2 /channel/send_sess_msg2``: answer a temporary session (§3.20).

    Args:
        to_uin: the peer's uin (``SessionMessage.from_uin``).
        content: a text, or texts and ``Face`` pieces (no pictures: LQ found that a
            temporary session cannot carry them).
        group_sig: ``C2CSig.group_sig`` for this peer.
        msg_id: the next value of this login's message counter (§7.2).
        clientid: this login's client id.
        psessionid: from ``Login2Result``.
        service_type: ``SessionMessage.service_type``: 0 group, 1 discussion.
        font: the font the peer sees.
        face: our avatar id (ignored by the server).

    Returns:
        The request; read its reply with ``parse_send``.

    Raises:
        ValueError: a picture piece.
    """
    if any(_pictures_of(content)):
        raise ValueError("send_sess_msg2 cannot carry pictures")
    r = {"to": to_uin, "group_sig": group_sig, "face": face,
         "content": encode_content(content, font), "msg_id": msg_id,
         "service_type": service_type, "clientid": clientid, "psessionid": psessionid}
    return channel_post("send_sess_msg2", r, clientid=clientid, psessionid=psessionid,
                         referer=D_REFERER3)


def build_change_status(status: str, *, clientid: int, psessionid: str, t: float) -> Request:
    """``GET d.web2 /channel/change_status2`` (§3.22).

    Args:
        status: one of ``STATUSES``.
        clientid: this login's client id.
        psessionid: from ``Login2Result``.
        t: the time now, unix seconds (``time.time()``); sent as whole seconds.

    Returns:
        The request; read its reply with ``parse_change_status``.

    Raises:
        ValueError: unknown ``status``.
    """
    return http_get(D_CHANNEL + "change_status2",
                [("newstatus", _check_status(status)), ("clientid", clientid),
                 ("psessionid", psessionid), ("t", _seconds(t))], {"Referer": D_REFERER})


def build_logout(*, clientid: int, psessionid: str, t: float) -> Request:
    """``GET d.web2 /channel/logout2``: end the session (§3.23).

    Args:
        clientid: this login's client id.
        psessionid: from ``Login2Result``.
        t: the time now, unix seconds (``time.time()``); sent as whole seconds.

    Returns:
        The request; read its reply with ``parse_logout``.
    """
    return http_get(D_CHANNEL + "logout2",
                    [("ids", ""), ("clientid", clientid), ("psessionid", psessionid),
                     ("t", _seconds(t))],
                {"Referer": D_REFERER})


def build_allow_and_add(qq: int, *, vfwebqq: str, category: int = 0,
                        markname: str = "") -> Request:
    """``POST s.web2 /api/allow_and_add2``: accept a friend request and add back (§3.24).

    Args:
        qq: the requester's QQ number (``FriendRequest.qq``).
        vfwebqq: from ``Login2Result``.
        category: the friend category to put them in (0: the default).
        markname: a remark name ("" for none; PB used the QQ number).

    Returns:
        The request; read its reply with ``parse_friend_request_reply``.
    """
    r = {"account": qq, "gid": category, "mname": markname, "vfwebqq": vfwebqq}
    return s_post("allow_and_add2", r, S_REFERER3)


def build_allow_added_request(qq: int, *, vfwebqq: str) -> Request:
    """``POST s.web2 /api/allow_added_request2``: accept a friend request only (§3.24).

    Args:
        qq: the requester's QQ number (``FriendRequest.qq``).
        vfwebqq: from ``Login2Result``.

    Returns:
        The request; read its reply with ``parse_friend_request_reply``.
    """
    return s_post("allow_added_request2", {"account": qq, "vfwebqq": vfwebqq}, S_REFERER3)


def build_deny_added_request(qq: int, *, vfwebqq: str, reason: str = "") -> Request:
    """``POST s.web2 /api/deny_added_request2``: refuse a friend request (§3.24).

    Args:
        qq: the requester's QQ number (``FriendRequest.qq``).
        vfwebqq: from ``Login2Result``.
        reason: the note the requester sees.

    Returns:
        The request; read its reply with ``parse_friend_request_reply``.
    """
    r = {"account": qq, "msg": reason, "vfwebqq": vfwebqq}
    return s_post("deny_added_request2", r, S_REFERER3)
