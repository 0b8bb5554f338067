"""Logging for the daemon: one format, secrets masked, repeated warnings collapsed.

What it is for: ``LogSetup`` gives the root logger its one handler (stderr, a file that
cooperates with logrotate, or a size-rotated file) and rebuilds it when the ``[daemon]``
logging keys change; ``SecretMask`` and ``RepeatCollapser`` are the filters on that
handler; ``MaskingCookieJar`` registers each secret cookie with the mask as it arrives.

What it must never do: let a registered secret through, at any level, in a message, a
traceback or a stack.
"""
import bisect
import http.cookiejar
import logging
import logging.handlers
import sys
import urllib.parse
from pathlib import Path
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Set, Tuple

from webqq.daemon import config as configuration
from webqq.http.cookies import CachingCookieJar
from webqq.http.redact import MASK, url_secrets

__all__ = ["LOG_FORMAT", "SecretMask", "RepeatCollapser", "LogSetup", "MaskingCookieJar"]

#: The one log format, for stderr and files alike.
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: Cookie names whose values are not secrets (the account number in two spellings).
_PUBLIC_COOKIES = frozenset({"uin", "pt2gguin", "p_uin", "ptisp"})
#: Secrets shorter than this are not masked (they would mask ordinary words).
_MIN_SECRET = 4
#: Session values (cookies, psessionid, vfwebqq) masked at most per account: every login
#: and every ptwebqq rotation brings new ones, and each log line is checked against all
#: of them. The values of an account's last few sessions fit; older ones are void and
#: are let go first.
SESSION_SECRETS_MAX = 128
#: With fewer forms than this, and than a line has characters, ``mask`` searches the
#: line for each form, longest first (one search in C each), instead of looking each
#: of its positions up by its first characters (a Python step a character): a daemon
#: of one or ten accounts then pays per line what it did before the index, and one of
#: a thousand no more than one of ten. Measured, the two cost the same at about as
#: many forms as characters on short lines, and 400 to 500 on lines of 3,000 and more.
_FEW_FORMS = 400
#: What ``_search`` puts in place of what it found until the end, so that no shorter
#: form matches there.
_BLANK = "\0"


class SecretMask(logging.Filter):
    """A handler filter that replaces every registered secret by ``********`` in the
    message, its traceback and its stack, whatever the level.

    ``add(value)`` registers a value (the password, the API's token and secret) and its
    URL-encoded forms for the life of the mask; ``add(value, session=OWNER)`` one that a
    new session of OWNER (an account's name, or its cookie jar) replaces: cookie values,
    psessionid, vfwebqq. It is a filter on each handler, not on a logger, because a
    logger's filters do not see records propagated from its children.

    Bound: the configuration's secrets all, and for each owner the last
    ``SESSION_SECRETS_MAX`` session values registered (or registered again); an older
    one is no longer masked. One account's logins never push out another's values.

    Cost: a log line costs about the same with a thousand accounts' values as with
    ten: ``mask`` looks each position of the line up by its first ``_MIN_SECRET``
    characters in an index that each add and drop changes in place (or, with fewer
    forms than ``_FEW_FORMS``, searches for each form, as it did before the index).
    """

    def __init__(self) -> None:
        super().__init__()
        self._lasting: Set[str] = set()
        # owner -> (value -> forms), oldest first
        self._session: Dict[Any, "OrderedDict[str, Set[str]]"] = {}
        self._refs: Dict[str, int] = {}     # form -> how many registrations name it
        # Two indexes, each changed in place by an add or a drop, never rebuilt (a
        # thousand accounts' logins add 10,000 forms; sorting them all at each add took
        # 6 s of the loop). For _search: (-len, form) of every form, longest first.
        self._ordered: List[Tuple[int, str]] = []
        # For _scan: first _MIN_SECRET characters -> (length -> how many forms start
        # with them and are that long).
        self._starts: Dict[str, Dict[int, int]] = {}
        self._blanks = 0                    # forms holding _BLANK: _search would err

    def add(self, value: Optional[str], session: Any = None) -> None:
        if not value or len(value) < _MIN_SECRET:
            return
        forms = {value, urllib.parse.quote(value, safe=""), urllib.parse.quote_plus(value)}
        if session is None:
            new = forms - self._lasting
            self._lasting |= new
            self._take(new)
            return
        values = self._session.setdefault(session, OrderedDict())
        if value in values:
            values.move_to_end(value)
            return
        values[value] = forms
        self._take(forms)
        while len(values) > SESSION_SECRETS_MAX:
            self._drop(values.popitem(last=False)[1])

    def _take(self, forms: Set[str]) -> None:
        for form in forms:
            count = self._refs.get(form, 0)
            self._refs[form] = count + 1
            if count:
                continue
            bisect.insort(self._ordered, (-len(form), form))
            lengths = self._starts.setdefault(form[:_MIN_SECRET], {})
            lengths[len(form)] = lengths.get(len(form), 0) + 1
            self._blanks += _BLANK in form

    def _drop(self, forms: Set[str]) -> None:
        for form in forms:
            count = self._refs[form] - 1
            if count:
                self._refs[form] = count
                continue
            del self._refs[form]
            del self._ordered[bisect.bisect_left(self._ordered, (-len(form), form))]
            lengths = self._starts[form[:_MIN_SECRET]]
            if lengths[len(form)] > 1:
                lengths[len(form)] -= 1
            elif len(lengths) > 1:
                del lengths[len(form)]
            else:
                del self._starts[form[:_MIN_SECRET]]
            self._blanks -= _BLANK in form

    def add_config(self, config: "configuration.Config") -> None:
        """Register the secrets a configuration holds: the password, the API's token
        and secret, the credentials in its URLs, and the plugin settings ``webqq
        check`` masks."""
        for account in config.accounts:
            self.add(account.password)
        self.add(config.api.token)
        self.add(config.api.secret)
        for url in (config.api.post_url, config.api.ws_reverse_url):
            for part in url_secrets(url):
                self.add(part)
        for settings in config.plugin_settings.values():
            for key, value in settings.items():
                if configuration.looks_secret(key):
                    self.add(value)

    def mask(self, text: str) -> str:
        """``text`` with each occurrence of a registered form replaced by ``MASK``.

        Longest first: where occurrences overlap, the longest is masked (of equal
        lengths, the form first in code point order, then the leftmost occurrence), and
        the others lose what it covered: one that still fits beside it is masked too,
        one that no longer does is left. What the mask puts in is not searched again.
        """
        if (self._blanks or len(self._refs) >= min(len(text), _FEW_FORMS)
                or _BLANK in text):
            return self._scan(text)
        return self._search(text)

    def _search(self, text: str) -> str:
        """``mask`` by searching for each form in turn, longest first, each occurrence
        replaced by ``_BLANK`` (which neither a form nor ``text`` holds) until the
        end, where each blank becomes ``MASK``."""
        found = False
        for _, form in self._ordered:
            if form in text:
                text, found = text.replace(form, _BLANK), True
        return text.replace(_BLANK, MASK) if found else text

    def _scan(self, text: str) -> str:
        """``mask`` by one pass over ``text``'s positions: every occurrence, overlapping
        ones too, then each masked that overlaps none masked before it, longest
        first."""
        starts, forms, size = self._starts, self._refs, len(text)
        found = []
        for start in [i for i in range(size - _MIN_SECRET + 1)
                      if text[i:i + _MIN_SECRET] in starts]:
            for length in starts[text[start:start + _MIN_SECRET]]:
                piece = text[start:start + length]
                if start + length <= size and piece in forms:
                    found.append((-length, piece, start))
        if not found:
            return text
        found.sort()
        begins: List[int] = []              # the spans masked, in order
        ends: List[int] = []
        for negative, _, start in found:
            end = start - negative
            i = bisect.bisect(begins, start)
            if (i and ends[i - 1] > start) or (i < len(begins) and begins[i] < end):
                continue
            begins.insert(i, start)
            ends.insert(i, end)
        pieces, done = [], 0
        for start, end in zip(begins, ends):
            pieces += (text[done:start], MASK)
            done = end
        pieces.append(text[done:])
        return "".join(pieces)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._refs:
            return True
        record.msg, record.args = self.mask(record.getMessage()), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.mask(record.exc_text)
        if record.stack_info:
            record.stack_info = self.mask(record.stack_info)
        return True


class RepeatCollapser(logging.Filter):
    """A handler filter that lets one of a run of identical warnings (same logger,
    level and text, WARNING or above) through and counts the rest; the next different
    record, or ``flush()``, first emits "last message repeated N times"."""

    def __init__(self, handler: logging.Handler) -> None:
        super().__init__()
        self._handler = handler
        self._last: Optional[Tuple[str, int, str]] = None
        self._last_record: Optional[logging.LogRecord] = None
        self._count = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "webqq_summary", False):
            return True
        key = ((record.name, record.levelno, record.getMessage())
               if record.levelno >= logging.WARNING else None)
        if key is not None and key == self._last:
            self._count += 1
            return False
        self.flush()
        self._last, self._last_record = key, record
        return True

    def flush(self) -> None:
        """Emit the pending "repeated N times" line, if any."""
        if not self._count:
            return
        last, count = self._last_record, self._count
        self._count = 0
        summary = logging.LogRecord(last.name, last.levelno, last.pathname, last.lineno,
                                    "last message repeated %d times", (count,), None)
        summary.webqq_summary = True
        self._handler.handle(summary)


class LogSetup:
    """The root logger's one handler, rebuilt when ``[daemon]`` logging keys change.

    Args:
        mask: the ``SecretMask`` shared by every handler this setup ever builds.
        fallback_file: where to log when ``logfile`` is empty and stderr is gone
            (a detached daemon); None: stderr.
    """

    def __init__(self, mask: SecretMask, fallback_file: Optional[Path] = None) -> None:
        self.mask = mask
        self.fallback_file = fallback_file
        self.handler: Optional[logging.Handler] = None
        self.collapser: Optional[RepeatCollapser] = None
        self._key: Optional[tuple] = None

    def apply(self, daemon: "configuration.DaemonConfig") -> None:
        """Set the level, and replace the handler if the destination changed."""
        logfile = daemon.logfile or self.fallback_file
        key = (logfile, daemon.log_max_bytes, daemon.log_backups)
        root = logging.getLogger()
        root.setLevel(daemon.loglevel)
        if key == self._key:
            return
        if logfile is None:
            handler: logging.Handler = logging.StreamHandler(sys.stderr)
        else:
            logfile.parent.mkdir(parents=True, exist_ok=True)
            if daemon.log_max_bytes:
                handler = logging.handlers.RotatingFileHandler(
                    logfile, maxBytes=daemon.log_max_bytes, backupCount=daemon.log_backups,
                    encoding="utf-8")
            else:
                # Reopens the file when logrotate has moved it away.
                handler = logging.handlers.WatchedFileHandler(logfile, encoding="utf-8")
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        handler.addFilter(self.mask)
        collapser = RepeatCollapser(handler)
        handler.addFilter(collapser)
        old = self.handler
        root.addHandler(handler)
        self.handler, self.collapser, self._key = handler, collapser, key
        if old is not None:
            self.close_handler(old)

    @property
    def to_stderr(self) -> bool:
        """Whether the log goes to stderr (a terminal, the journal)."""
        return self.handler is not None and not isinstance(self.handler,
                                                           logging.FileHandler)

    def flush(self) -> None:
        if self.collapser is not None:
            self.collapser.flush()

    def close(self) -> None:
        if self.handler is not None:
            self.flush()
            self.close_handler(self.handler)
            self.handler = self.collapser = None
            self._key = None

    @staticmethod
    def close_handler(handler: logging.Handler) -> None:
        logging.getLogger().removeHandler(handler)
        handler.close()


class MaskingCookieJar(CachingCookieJar):
    """A cookie jar that registers each secret cookie value with a ``SecretMask`` the
    moment it is stored, before any later log line could show it (a
    ``CachingCookieJar``: one per account, each request's Cookie header cheap)."""

    def __init__(self, mask: SecretMask) -> None:
        super().__init__()
        self._mask = mask

    def set_cookie(self, cookie: http.cookiejar.Cookie) -> None:
        if cookie.name not in _PUBLIC_COOKIES:
            self._mask.add(cookie.value, session=self)
        super().set_cookie(cookie)
