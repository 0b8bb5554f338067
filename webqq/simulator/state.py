"""The simulated Tencent back end: the four services it is made of, and its report.

state: decisions without HTTP. The handlers of ``app.py`` and ``control.py`` parse a
request into plain values and call one of the back end's parts; it answers with the
reply body (a dict, or ``LoginOutcome``/``CheckReply`` for the login server) or raises
``errors.Refusal`` carrying the retcode body of §6. No part touches a socket,
a request or the IOLoop's timers: time comes from an injected clock, randomness from the
simulator's seeded ``random.Random``, and the only asynchronous objects are the Futures
of held polls. None may log a secret: no password, p, skey, ptwebqq, vfwebqq or
psessionid value.

Parts, in the order of an account's life (§2.2, §2.5):

* ``login`` (login.py): /check, /getimage, /login and Era B's hops grant cookies.
* ``sessions`` (sessions.py, session.py): login2 turns a grant into a session; every
  later call is checked against it; polls take its queued events.
* ``chat`` (chat.py): sends are recorded and delivered to the receivers' queues.
* ``lists`` (lists.py): friend, group and discussion lists and lookups.
* ``pictures`` (pictures.py): the upload servers, the group signature, pictures in
  sends, fetching them; ``files`` (files.py): offers and offline files; ``manage``
  (manage.py): friend requests, group membership and the account's answers. Pictures
  and files are served from the simulator's own address (``address``).
"""
import logging
import time

from .chat import ChatRouter
from .files import Files
from .lists import Lists
from .login import LoginServer
from .manage import Manage
from .pictures import Pictures
from .sessions import Sessions

__all__ = ["Backend"]

log = logging.getLogger("webqq.simulator")


class Backend:
    """Everything the simulated servers remember, and the rules they answer by.

    Args:
        world: the loaded World.
        rng: the seeded ``random.Random`` (tokens, codes, msg ids).
        clock: returns unix time in seconds (``time.time`` by default).
        address: returns the ``(host, port)`` pictures and files are served from.
    """

    def __init__(self, world, rng, clock=time.time, *, address):
        self.world = world
        self.listeners = []             # callables(kind, **fields), see tell()
        self.login = LoginServer(world, rng)
        self.sessions = Sessions(world, rng, clock, self.login, tell=self.tell)
        self.pictures = Pictures(world, rng, self.sessions, address)
        self.chat = ChatRouter(world, rng, clock, self.sessions, self.pictures, tell=self.tell)
        self.lists = Lists(world, clock, self.sessions)
        self.files = Files(world, rng, self.chat, address)
        self.manage = Manage(world, clock, self.sessions, self.chat)

    def tell(self, kind: str, **fields) -> None:
        """Tell each listener (the chat page's feed) what happened: "said" (to, spec,
        item), "sent" (account, record), "state" (qq) or "answered" (qq, body: a poll
        answer handed to the socket). A listener that raises is logged; one ignores the
        kinds it does not know."""
        for listener in list(self.listeners):
            try:
                listener(kind, **fields)
            except Exception:
                log.exception("simulator listener failed on %r", kind)

    def report(self) -> dict:
        """/_sim/state's "accounts": state and counters, never a token."""
        accounts = {}
        for qq, account in self.world.accounts.items():
            session = self.sessions.get(qq)
            entry = {"state": "offline", "status": "offline", "nick": account.nick,
                     "captcha": self.login.captcha_shown(qq)}
            if session is not None:
                session.expire_if_idle()
                entry.update(state=session.state, status=session.status, clientid=session.clientid,
                             polling=session.pending is not None, polls=session.polls,
                             queued=len(session.queue), sent=len(self.chat.sent.get(qq, [])))
            accounts[str(qq)] = entry
        return accounts

    def close(self) -> None:
        """The simulator stops: every held poll's Future resolves with None."""
        self.sessions.close()
