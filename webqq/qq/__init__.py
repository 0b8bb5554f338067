"""The WebQQ wire protocol of 2013, as plain functions and values.

What it is for: building each request (a ``urllib.request.Request``) and parsing each
reply into a frozen value or a specific ``ProtocolError``; the password and list hashes;
the message content format. May import: :mod:`webqq.http` for nothing but types, and the
standard library. Must never: open a socket, touch the IOLoop, read the clock or draw a
random number (timestamps and nonces are arguments), or keep state between calls.

A bare section number (§3.6) here and in the client and the simulator points into the
project's protocol reference, ``docs/protocol.rst``, which names the 2013 source of
each fact.

One module per job, every public name importable from here (``from webqq.qq import
build_poll, parse_poll, PollOutcome``)::

    kinds          Era (protocol shape), ChatKind (buddy, group, discussion, session)
    errors         ProtocolError and its subclasses; QQRetcode, LoginCode
    hashes         encrypt_password, friends_hash
    content        message content: pieces, fonts, faces; encode, decode, split
    builders       build_<endpoint>(...) -> Request, and the protocol's constants
    reply          (internal) the reading every parser shares
    login_replies  parse_login_sig, parse_check, parse_login, parse_login2
    list_replies   friends, groups, discussions, their members; lookups, who is online
    poll           parse_poll -> PollResult: a PollOutcome and PollEvents
    acks           sends, c2c signature, status, logout, heartbeat, friend requests
    pictures       sniff_picture, the 2013 size limits, UploadPicture (a picture to send)
    media          uploading a picture to send, fetching one received
    files          taking or refusing a friend's file, fetching an offline file
    manage         answering a request to join a group, leaving it, one's group card
    request        (internal) GET, form and multipart requests, as builders make them
"""
from webqq.qq.acks import (Ack, C2CSig, SendResult, parse_c2c_sig, parse_change_status,
                           parse_friend_request_reply, parse_heartbeat, parse_logout,
                           parse_send)
from webqq.qq.builders import (
    APPID, DEFAULT_FACE, STATUSES, WEBQQ_TYPE_HIDDEN, WEBQQ_TYPE_ONLINE, build_allow_added_request,
    build_allow_and_add, build_c2c_sig, build_captcha, build_change_status, build_check,
    build_check_sig, build_deny_added_request, build_discussion_info, build_discussions,
    build_friend_uin, build_friends, build_group_info, build_groups, build_heartbeat,
    build_login, build_login2, build_login_page, build_logout, build_online_buddies,
    build_poll, build_send_buddy, build_send_discussion, build_send_group, build_send_session)
from webqq.qq.builders import DISCUSSION_LIST_HOSTS
from webqq.qq.content import (
    DEFAULT_FONT, MAX_PARTS, MAX_TEXT_CHARS, CFace, Content, Face, Font, Image,
    MalformedContent, MessageTooLong, OffPic, Outgoing, OutgoingPiece, Piece, Text,
    UnknownPiece, content_text, decode_content, decode_sent_content, encode_content,
    has_pictures, split_content, split_text)
from webqq.qq.errors import (LoginCode, LoginError, MalformedReply, ProtocolError, QQRetcode,
                             RetcodeError, UnblockRequired, UploadRefused)
from webqq.qq.files import (build_get_file, build_get_offline_file, build_refuse_file,
                            parse_get_file, parse_refuse_file)
from webqq.qq.hashes import HASH_VARIANTS, encrypt_password, friends_hash
from webqq.qq.kinds import ChatKind, Era
from webqq.qq.list_replies import (
    CategoryEntry, DiscussionEntry, DiscussionInfo, DiscussionList, DiscussionMember,
    FriendEntry, FriendList, GroupEntry, GroupInfo, GroupList, GroupMember, OnlineBuddy,
    QQLookup, parse_discussion_info, parse_discussions, parse_friend_uin, parse_friends,
    parse_group_info, parse_groups, parse_online_buddies)
from webqq.qq.login_replies import (CheckResult, Login2Result, LoginResult, parse_check,
                                    parse_login, parse_login2, parse_login_sig)
from webqq.qq.manage import (build_answer_group_request, build_quit_group,
                             build_set_group_card, parse_answer_group_request,
                             parse_quit_group, parse_set_group_card)
from webqq.qq.media import (FetchedPicture, GFaceSig, build_gface_sig, build_get_cface,
                            build_get_group_pic, build_get_offpic, build_upload_cface,
                            build_upload_offline_pic, parse_gface_sig, parse_picture,
                            parse_upload_cface, parse_upload_offline_pic)
from webqq.qq.pictures import (GROUP_PICTURE_MAX, OFFLINE_PICTURE_MAX, RECEIVED_PICTURE_MAX,
                               PictureError, UploadPicture, picture_limit, sniff_picture)
from webqq.qq.poll import (
    AvRequest, BuddyListChange, BuddyMessage, ChatMessage, DiscussionMessage, FileEvent,
    FriendAdded, FriendRequest, FriendRequestAccepted, GroupMessage, GroupSystemEvent,
    GroupWebMessage, InputNotify, Kick, MalformedEvent, PollEvent, PollOutcome, PollResult,
    SessionMessage, Shake, StatusChange, Tips, UnknownEvent, parse_poll)

__all__ = [
    # kinds, errors
    "Era", "ChatKind", "ProtocolError", "MalformedReply", "RetcodeError", "LoginError",
    "UnblockRequired", "UploadRefused", "QQRetcode", "LoginCode",
    # hashes
    "encrypt_password", "friends_hash", "HASH_VARIANTS",
    # content
    "MAX_TEXT_CHARS", "MAX_PARTS", "MalformedContent", "MessageTooLong", "Font",
    "DEFAULT_FONT", "Text", "Face", "Image", "UnknownPiece", "Piece", "Content", "OffPic",
    "CFace", "OutgoingPiece", "Outgoing", "decode_content", "decode_sent_content",
    "encode_content", "content_text", "has_pictures", "split_text", "split_content",
    # pictures
    "GROUP_PICTURE_MAX", "OFFLINE_PICTURE_MAX", "RECEIVED_PICTURE_MAX", "PictureError",
    "UploadPicture", "picture_limit", "sniff_picture",
    # builders
    "APPID", "STATUSES", "WEBQQ_TYPE_ONLINE", "WEBQQ_TYPE_HIDDEN", "DEFAULT_FACE",
    "DISCUSSION_LIST_HOSTS",
    "build_login_page", "build_check", "build_captcha", "build_login", "build_check_sig",
    "build_login2", "build_friends", "build_groups", "build_group_info",
    "build_discussions", "build_discussion_info", "build_friend_uin",
    "build_online_buddies", "build_poll", "build_heartbeat", "build_send_buddy",
    "build_send_group", "build_send_discussion", "build_c2c_sig", "build_send_session",
    "build_change_status", "build_logout", "build_allow_and_add",
    "build_allow_added_request", "build_deny_added_request",
    # login replies
    "CheckResult", "LoginResult", "Login2Result",
    "parse_login_sig", "parse_check", "parse_login", "parse_login2",
    # list replies
    "CategoryEntry", "FriendEntry", "FriendList", "GroupEntry", "GroupList", "GroupMember",
    "GroupInfo", "DiscussionEntry", "DiscussionList", "DiscussionMember", "DiscussionInfo",
    "QQLookup", "OnlineBuddy", "parse_friends", "parse_groups", "parse_group_info",
    "parse_discussions", "parse_discussion_info", "parse_friend_uin", "parse_online_buddies",
    # poll
    "PollOutcome", "PollResult", "parse_poll", "PollEvent", "ChatMessage", "BuddyMessage",
    "GroupMessage", "DiscussionMessage", "SessionMessage", "Kick", "StatusChange",
    "InputNotify", "Shake", "FriendRequest", "FriendAdded", "FriendRequestAccepted",
    "GroupSystemEvent", "BuddyListChange", "FileEvent", "GroupWebMessage", "Tips",
    "AvRequest", "UnknownEvent", "MalformedEvent",
    # acks
    "Ack", "SendResult", "C2CSig", "parse_send", "parse_c2c_sig", "parse_heartbeat",
    "parse_change_status", "parse_logout", "parse_friend_request_reply",
    # media
    "GFaceSig", "FetchedPicture", "build_upload_offline_pic", "parse_upload_offline_pic",
    "build_gface_sig", "parse_gface_sig", "build_upload_cface", "parse_upload_cface",
    "build_get_offpic", "build_get_cface", "build_get_group_pic", "parse_picture",
    # files
    "build_get_file", "parse_get_file", "build_refuse_file", "parse_refuse_file",
    "build_get_offline_file",
    # manage
    "build_answer_group_request", "parse_answer_group_request", "build_quit_group",
    "parse_quit_group", "build_set_group_card", "parse_set_group_card",
]
