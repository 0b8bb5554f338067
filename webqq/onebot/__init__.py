"""The OneBot v11 API: how bots written for NoneBot, aiocqhttp or Koishi reach webqq.

What it is for: HTTP actions, forward and reverse WebSockets, event POSTs, the mapping
between OneBot's messages and WebQQ's content, and the SQLite store of messages and the
outgoing queue. May import :mod:`webqq.client` and the layers below it. Must never go
around the client: every send goes through its queue, every fact comes from its events.

Its modules, from the bottom up: ``mapping`` (OneBot shapes, no I/O), ``store`` (the
SQLite file), ``outbound`` (the durable queue of messages to send), ``actions`` (one
coroutine per action), ``delivery`` (event POSTs, the reverse WebSocket), ``handlers``
(HTTP and forward WebSocket), ``listener`` (the HTTP server's timeouts, connection cap
and accept loop), ``server`` (``OneBotApi``, owning the rest), ``token``.
"""
