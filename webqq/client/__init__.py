"""The WebQQ client: one account's session on an HTTPStream.

What it is for: the login state machine, the poll and heartbeat chains, the contact
lists, and the outgoing queue, driven by readbacks. May import :mod:`webqq.http`,
:mod:`webqq.qq` and :mod:`webqq.statedir`. Must never open a socket (HTTPStream does),
parse bytes (:mod:`webqq.qq` does), or know of plugins, the OneBot API or the daemon.
"""
