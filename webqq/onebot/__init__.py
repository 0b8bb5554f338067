"""The OneBot v11 API: how bots written for NoneBot, aiocqhttp or Koishi reach webqq.

What it is for: HTTP actions, forward and reverse WebSockets, event POSTs, the mapping
between OneBot's messages and WebQQ's content, and the SQLite store of messages and the
outgoing queue. May import :mod:`webqq.client` and the layers below it. Must never go
around the client: every send goes through its queue, every fact comes from its events.

Its modules, from the bottom up: ``mapping`` (OneBot shapes, no I/O), ``notices``
(the notice and request events, no I/O), ``store`` (the SQLite file), ``discussions``
(discussion ids that outlive the dids), ``media`` (pictures to send and where they
wait, received pictures and files by name), ``outbound`` (the durable queue of messages
to send), ``actions`` (one coroutine per action) with ``account`` (pictures, files,
requests, groups, and what WebQQ cannot do), ``delivery`` (event POSTs, the reverse
WebSocket), ``handlers`` (HTTP, forward WebSocket, the media route), ``bot``
(``AccountApi``: one account's events, actions and deliveries), ``listener`` (the HTTP
server's timeouts, connection cap and accept loop), ``server`` (``OneBotApi``, serving
every account), ``token``.
"""
