"""webqq.simulator: the WebQQ servers of 2013, on loopback, for tests and plugin writers.

Tencent switched WebQQ off long ago. This package serves docs/protocol.rst faithfully enough
that a client which works against it would have worked against Tencent: same hosts and
paths (routed by the Host header), same cookies with their domains, the same checks
(password hash, verify code, ptwebqq, vfwebqq, psessionid, clientid, Referer) answered
with the same error forms, a real long poll, and TLS on the https hosts with a
certificate of the simulator's own CA (``Simulator.ca_file``; TEST MATERIAL). Where
docs/protocol.rst is uncertain it follows pual_bot (Era A), and the code says so.

It must never reach the network beyond its own listening sockets, never block or
thread the IOLoop it runs in, and never log a password, p, skey, ptwebqq, vfwebqq or
psessionid.

Use::

    sim = Simulator(world=None, poll_hold=55.0, host="127.0.0.1", port=0, tls_port=0)
    sim.hosts      # {"d.web2.qq.com": ("127.0.0.1", 41234), "ssl.ptlogin2.qq.com": (…, tls)}
    sim.ca_file    # the CA to trust for the TLS port
    sim.control_token  # the secret of the /_sim/ control surface
    await sim.stop()

The constructor starts it (on the current IOLoop). Modules: ``world`` (the JSON world),
``state`` (the back end, made of ``login``, ``sessions`` with ``session``, ``chat``,
``lists``, ``pictures``, ``files`` and ``manage``), ``events`` (poll items), ``app`` and
``mediaapp`` (protocol handlers; pictures and files are served from the plain port's own
address), ``control`` (this surface), ``server`` (ports, TLS, timers), ``cli``; beside
them ``wire``, ``tokens``, ``errors``, ``faults`` and ``captcha``.

Control surface, on the plain port under ``/_sim/`` for any Host, JSON in and out.
Every request carries the run's control token (``Simulator(control_token=None)`` draws
one; ``.control_token``; ``webqq-simulator`` prints it) as ``X-Sim-Token: TOKEN`` or
``Authorization: Bearer TOKEN``; POST bodies are ``Content-Type: application/json``; a
request with an ``Origin`` must come from the surface's own origin (no other web page
can drive it). Everyone is named by QQ number, groups and discussions by their world
number::

    POST /_sim/say     {"to": 10001, "from": 20001, "text": "hi"}             a "message"
                       {"to": 10001, "group": 30001, "from": 20002, "text": "hi"}
                       {"to": 10001, "discussion": 40001, "from": 20003, "text": "hi"}
                       optional "content": [pieces] instead of text (e.g. ["hi ",
                       ["face", 14]]), "font": {…}, "picture": {"base64": "…"} or
                       {"file": "NAME"} (under the world file's folder), said after the
                       text, or ["picture", {…}] pieces in "content": a friend's is an
                       offpic (with "as": "cface" a custom face), a group's or
                       discussion's a cface naming this simulator as its server
                       -> {"ok": true, "item": {"poll_type": …, "value": {…}}}
    POST /_sim/event   {"to": 10001, "poll_type": "input_notify", "from": 20001}
                       any poll_type of docs/protocol.rst §5, built with every field:
                       message, group_message, discu_message, sess_message (with
                       "group" or "discussion"), kick_message, buddies_status_change
                       ("status"), input_notify, shake_message, system_message ("type":
                       verify_required | added_buddy_sig | verify_pass |
                       verify_pass_add), sys_g_msg ("group", "type": group_join |
                       group_leave | group_request_join | group_request_join_agree |
                       group_request_join_deny | group_create), buddylist_change
                       ("type": added | removed), file_message ("type": recv | refuse |
                       send_ack), push_offfile, notify_offfile, filesrv_transfer,
                       group_web_message, tips, av_request. "text" fills the text-like
                       field; "value": {…} overrides or adds keys last.
                       -> {"ok": true, "item": {…}}
    GET  /_sim/sent?account=10001
                       -> [{"kind": "buddy|group|discussion|session", "to": N, "text": "…",
                            "msg_id": N, "time": T, "content": [pieces],
                            "dropped": null | "too_fast" | "duplicate" | "repeat",
                            "pictures": [{"piece": N, "kind": "offpic|cface", "name": …,
                                          "sha1": …, "format": "jpg", "size": N}]}, …]
                       in order
                       (a dropped send was answered "ok" and delivered to nobody: the
                       world options min_interval, dup_window, drop_exact_repeats)
    GET  /_sim/dropped?account=10001
                       -> the dropped ones only: [] when the client kept the 2013 pace
    GET  /_sim/state   -> {"accounts": {"10001": {"state": "offline|online|kicked|expired|
                            logged_out", "status": "online", "nick": "…", "captcha": null
                            | "CODE" (what the captcha image shows), "clientid": "…",
                            "polling": bool, "polls": N, "queued": N, "sent": N}},
                            "poll_hold": S, "era": "A", "faults": […]}
    POST /_sim/kick    {"account": 10001, "kick_message": false}
                       the held or next poll answers 121 (after a kick_message item
                       when "kick_message" is true)                 -> {"ok": true}
    POST /_sim/rotate  {"account": 10001}  the held or next poll answers 116 with a new
                       ptwebqq, which login2 then requires          -> {"ok": true}
    POST /_sim/expire  {"account": 10001}  the account's login expires: the held or next
                       poll answers 103, a relink or resumed session (login2 with the
                       saved cookies) is refused with 103, so the client logs in again
                       from check. Events said meanwhile wait for that login.
                                                                    -> {"ok": true}
    POST /_sim/captcha {"account": 10001, "code": "ABCD"}
                       the next check requires a captcha showing that code. A client
                       that is online only meets it at its next check: follow with
                       /_sim/expire (a kick is not enough: the client relinks, no check)
    POST /_sim/fault   {"path": "/channel/poll2", "kind": "status|reset|delay|retcode",
                        "status": 502, "count": 3, "seconds": 2, "retcode": 103,
                        "host": "d.web2.qq.com" (optional), "when": "before|after"
                        (status and reset: before the request is handled, or after it,
                        e.g. once a send was delivered; default: status before, reset
                        after)}  see faults.py
                       -> {"ok": true, "faults": [...]}
    GET  /_sim/fault   -> the pending faults;  DELETE /_sim/fault clears them
    POST /_sim/offline {"seconds": 30}  both ports refuse connections for a while
                       (the answer is sent first; /_sim/ is unreachable meanwhile)
    GET  /_sim/picture?sha1=HEX  -> {"sha1", "format", "size", "base64"}: a picture the
                       simulator keeps, by the SHA-1 /_sim/sent gives
    POST /_sim/file    {"to": 10001, "from": 20001, "name": "a.txt", "base64": "…",
                        "action": "offer" (default) | "offline"}  a friend offers a file
                       (file_message, taken with get_file2) or leaves one (push_offfile,
                       served here); {"to": 10001, "action": "cancel", "session_id": N}
                       takes an offer back                -> {"ok": true, "item": {…}}
    GET  /_sim/files?account=10001
                       -> [{"kind": "offer", "session_id": N, "from": QQ, "name": …,
                            "size": N, "sha1": …, "state": "offered|accepted|refused|
                            cancelled", "downloads": N}, {"kind": "offline", "rkey": …}]
    POST /_sim/friend  {"to": 10001, "from": 379450326, "text": "please add me",
                        "action": "request" (default)}  verify_required, which the
                       account answers (allow_and_add2, allow_added_request2,
                       deny_added_request2); "action": "added" (added_buddy_sig: they
                       added the account), "accepted" (the account's request was:
                       verify_pass, or verify_pass_add naming "category"; a friend now)
                                                          -> {"ok": true, "item": {…}}
    POST /_sim/group   {"group": 30001, "action": "join" | "leave" | "remove",
                        "member": 20003, "admin": 20002}  a member joins (let in by
                       "admin", the owner unless named), leaves, or is removed by
                       "admin": the members change and the group's logged-in accounts
                       get sys_g_msg; "request" (+ "text"): "member" asks the group's
                       logged-in administrators (op_group_join_req answers); "agree" |
                       "deny" (+ "text", "admin"): the account "member"'s own request
                       is answered                        -> {"ok": true, "items": […]}
    GET  /_sim/answers?account=10001
                       -> what the account answered and changed, in order: [{"call":
                          "allow_and_add2" | "allow_added_request2" |
                          "deny_added_request2" | "op_group_join_req" | "quit_group2" |
                          "update_group_business_card2", "time": T, "qq" or "group": …,
                          "accept": …, …}]

Errors: 400 {"error": …} (bad body, unknown name), 403 (no or wrong token, a foreign
Origin), 404 (unknown verb), 405, 409 (e.g. the account is not logged in), 415 (a POST
body not declared application/json).
"""
from .server import CA_FILE, DEFAULT_POLL_HOLD, Simulator
from .world import World, WorldError, load_world

__all__ = ["CA_FILE", "DEFAULT_POLL_HOLD", "Simulator", "World", "WorldError", "load_world"]
