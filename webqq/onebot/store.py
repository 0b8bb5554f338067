"""The message store: one SQLite file in state_dir (``messages.sqlite3``).

store: what the daemon must remember across a crash. Every message received and sent
(its OneBot ``message_id`` is the row id), the one outbound queue itself (the rows still
``queued``, whoever asked for them: ``origin`` is ``api`` or ``plugin``), the events
no webhook took, and what fetching each received picture needs (``received_pictures``).
A queued picture's bytes are not here: its row names a file of ``state_dir/media-out``
(``webqq.onebot.media``). It knows nothing of Tornado or WebQQ: plain values in, plain
values out.

One file serves every account of a daemon: each row belongs to an ``account`` (a QQ
number), and ``store.for_account(qq)`` is that account's view of the file (the same
methods, each limited to its rows; one connection shared). A file written before rows had
an account holds them under account 0 until ``adopt(qq)`` gives them to one.

What it must never do: hold a transaction open across an ``await`` or a callback,
block the IOLoop for long, or leave a file others can read (the database, its ``-wal``
and ``-shm`` are 0600 whatever the umask: ``_make_private``). Each method is one or two
short statements in autocommit mode (``mark_sending``: one transaction for the rows it
is given), run synchronously on the IOLoop: SQLite calls are quick local file I/O, and
the project starts no threads.

When the file cannot be written (another process holds the write lock, as a backup or
an admin's ``sqlite3`` shell does; the disk is full; the file is read-only; an I/O
error) a method raises ``StoreUnavailable`` and changes nothing. It waits for a lock at
most ``BUSY_TIMEOUT`` (not SQLite's default of 5 s, which would freeze the loop that
long per call); after a failure every write fails at once, without touching the file,
until ``probe()`` finds it writable again. So a held lock costs the loop one short wait
per ``probe()``, whoever keeps calling. Why not a writer thread with a queue: the
project starts no threads, and a caller must know *before* it acts (hands a message to
the network) that the row is written; a queued write would tell it too late. Why not a
longer timeout: a backup may hold the lock for minutes. The owner of the retries
(``webqq.onebot.outbound``) calls ``probe()`` on a timer, told by ``on_unwritable``.

The life of an outgoing row (``status``)::

    queued --(written, then handed to the client)--> sending   (mark_sending)
    sending --> sent | failed | ambiguous          (the client's SendFinished)
    sending --> failed                             (refused before it left: expired,
                                                    unknown target)
    sending --> queued                             (a clean stop, or a restarted client,
                                                    before any part left)
    sending --> ambiguous                          (found at startup: the daemon died
                                                    while the client held it)

A message is handed to the client only after ``sending`` is written (and synced), so
nothing is ever transmitted that the store does not know may be on the wire; a row
found ``sending`` at startup is never sent again. A message accepted for sending is sent
at most once, and exactly once unless the process died while the client held it (the
queue hands a row over only when the client will transmit it at once: see
``webqq.onebot.outbound``).

Opening (``open_store``): a file that is not an SQLite database, or a damaged one, is
moved aside as ``messages.sqlite3.bad-YYYYmmddTHHMMSS`` (with its ``-wal`` and ``-shm``)
and the daemon starts with an empty store, saying so in one log line; only a file that
cannot be opened at all stops the start.

Durability: WAL journal with ``synchronous=NORMAL``: a committed row survives the process
being killed (SIGKILL); the last transactions may be lost to a power cut, except
``sending``, written with ``synchronous=FULL`` (a power cut cannot undo it).
"""
import json
import logging
import os
import sqlite3
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Set, Tuple
from urllib.request import pathname2url

__all__ = ["Store", "StoredMessage", "StoreUnavailable", "StoreDamaged", "StoreError",
           "open_store", "move_aside", "RETENTION_DAYS", "BUSY_TIMEOUT"]

log = logging.getLogger("webqq.api")

#: Days finished messages and undelivered events are kept (a future ``[api]`` key).
RETENTION_DAYS = 30.0
#: Seconds a statement waits for another process's lock before ``StoreUnavailable``:
#: the longest a store call blocks the IOLoop for a lock (a commit takes milliseconds).
BUSY_TIMEOUT = 0.05
#: Seconds opening the file may wait for a lock: at startup nothing is served yet.
OPEN_TIMEOUT = 5.0
#: Statuses of an outgoing row that still has to be sent.
PENDING = ("queued", "sending")

#: What fetching a received picture needs, by the name its ``image`` segment gives it:
#: a bot may ask for the picture as long as its message is kept.
_RECEIVED_PICTURES = """
CREATE TABLE IF NOT EXISTS received_pictures (
    account INTEGER NOT NULL DEFAULT 0,
    name TEXT NOT NULL,                     -- the image segment's file
    data TEXT NOT NULL,                     -- JSON: the client's ReceivedPicture
    time REAL NOT NULL,
    PRIMARY KEY (account, name)
)"""
#: The ids given to discussions (``webqq.onebot.discussions``).
_DISCUSSIONS = """
CREATE TABLE IF NOT EXISTS discussions (
    account INTEGER NOT NULL DEFAULT 0,     -- whose discussion: the account's QQ number
    discuss_id INTEGER NOT NULL,            -- the OneBot id, kept for good
    did INTEGER NOT NULL,                   -- the discussion's did when last seen
    owner INTEGER,                          -- the owner's QQ number, if known
    name TEXT NOT NULL,
    seen REAL NOT NULL,
    PRIMARY KEY (account, discuss_id)
)"""
#: The tables, one statement each (the comments hold semicolons).
_SCHEMA = ("""
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,   -- the OneBot message_id
    account INTEGER NOT NULL DEFAULT 0,     -- whose row: the account's QQ number
    direction TEXT NOT NULL,                -- 'in' or 'out'
    chat TEXT NOT NULL,                     -- buddy, group, discussion, session
    target INTEGER,                         -- out: QQ, group number or did; in: the chat's
    user_id INTEGER,                        -- the sender (in) or our own number (out)
    text TEXT NOT NULL,                     -- plain text (faces as [face:N])
    data TEXT NOT NULL DEFAULT '{}',        -- JSON: segments, sender, ... for get_msg
    time REAL NOT NULL,                     -- received, or accepted for sending
    status TEXT NOT NULL,                   -- in: 'received'; out: see the module doc
    retcode INTEGER,                        -- the server's retcode of a failed send
    error TEXT,                             -- why failed or ambiguous
    idempotency_key TEXT,                   -- optional, from the sender
    updated REAL NOT NULL,
    origin TEXT NOT NULL DEFAULT 'api',     -- out: who asked, 'api' or 'plugin'
    UNIQUE (account, idempotency_key)
)""", """
CREATE INDEX IF NOT EXISTS messages_pending ON messages (account, status)
    WHERE direction = 'out'
""", _RECEIVED_PICTURES, """
CREATE TABLE IF NOT EXISTS undelivered_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account INTEGER NOT NULL DEFAULT 0,
    url TEXT NOT NULL,
    body TEXT NOT NULL,                     -- the event JSON as it was to be POSTed
    time REAL NOT NULL,
    error TEXT
)""", _DISCUSSIONS)
#: The columns of ``messages`` in schema 2, copied as they are by the upgrade to 3.
_COLUMNS_2 = ("id, direction, chat, target, user_id, text, data, time, status, retcode, "
              "error, idempotency_key, updated, origin")
#: ``PRAGMA user_version`` of the schema above, and how to bring an older file to it
#: (the statements of each step, in order; ``_SCHEMA`` runs after them).
SCHEMA_VERSION = 4
_UPGRADES = {
    # 0 -> 1: plugin replies joined the queue (they were saved to outbox-QQ.json).
    1: ("ALTER TABLE messages ADD COLUMN origin TEXT NOT NULL DEFAULT 'api'",),
    # 1 -> 2: received pictures are served by the API.
    2: ("CREATE TABLE received_pictures (name TEXT PRIMARY KEY, data TEXT NOT NULL, "
        "time REAL NOT NULL)",),
    # 2 -> 3: rows belong to an account (several in one daemon); an idempotency key is
    # unique per account, and a picture's name too, which takes new tables (SQLite
    # cannot drop a constraint). The old rows are account 0's until the daemon adopts
    # them; message ids go on from the old table's sequence.
    3: ("DROP INDEX IF EXISTS messages_pending",
        "ALTER TABLE messages RENAME TO messages_2",
        _SCHEMA[0],
        "INSERT INTO messages (%s) SELECT %s FROM messages_2" % (_COLUMNS_2, _COLUMNS_2),
        "DELETE FROM sqlite_sequence WHERE name = 'messages'",
        "UPDATE sqlite_sequence SET name = 'messages' WHERE name = 'messages_2'",
        "DROP TABLE messages_2",
        "ALTER TABLE undelivered_events ADD COLUMN account INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE received_pictures RENAME TO received_pictures_2",
        _RECEIVED_PICTURES,
        "INSERT INTO received_pictures (name, data, time) SELECT name, data, time FROM "
        "received_pictures_2",
        "DROP TABLE received_pictures_2"),
    # 3 -> 4: discussions got ids of their own, kept per account.
    4: (_DISCUSSIONS,),
}


class StoreUnavailable(Exception):
    """Raised when the store cannot be written or read (locked by another process, disk
    full, read-only, an I/O error); ``reason`` says which. Nothing was changed."""

    def __init__(self, reason: str) -> None:
        super().__init__("the message store cannot be written: %s" % reason)
        self.reason = reason


class StoreDamaged(Exception):
    """Raised when the file is not an SQLite database, or a damaged one (``PRAGMA
    quick_check`` finds a fault)."""


class StoreError(Exception):
    """Raised by ``open_store`` when the store cannot be opened at all. The message
    names the file and what to do; ``temporary`` is true when starting again later may
    work (another process holds the file)."""

    def __init__(self, message: str, *, temporary: bool = False) -> None:
        super().__init__(message)
        self.temporary = temporary


class StoredMessage:
    """A row of ``messages`` as a value (attributes named as the columns; ``data`` is
    the decoded JSON)."""

    __slots__ = ("id", "account", "direction", "chat", "target", "user_id", "text", "data", "time",
                 "status", "retcode", "error", "idempotency_key", "updated", "origin")

    def __init__(self, row: sqlite3.Row) -> None:
        for name in self.__slots__:
            setattr(self, name, row[name])
        self.data = json.loads(row["data"] or "{}")

    def __repr__(self) -> str:
        return "<StoredMessage %d %s %s %s>" % (self.id, self.direction, self.chat,
                                               self.status)


#: ``answer(marked, reason)`` of a row asked to become ``sending`` (``ask_sending``).
SendingAnswer = Callable[[bool, Optional[str]], None]


class _File:
    """What the views of one file share: the connection, whether it can be written,
    the views to tell when it cannot, and the rows asked to become ``sending`` that the
    next ``flush_sending`` syncs together (message id -> answer, in the order asked)."""

    def __init__(self) -> None:
        self.db: Optional[sqlite3.Connection] = None
        self.unwritable: Optional[str] = None
        self.views: List["Store"] = []
        self.sending: Dict[int, SendingAnswer] = {}


class Store:
    """The SQLite file of one daemon, as account ``account`` sees it (0 for a file
    opened directly: the rows from before accounts; ``for_account`` gives the others).

    Args:
        path: the database file (created with its tables if absent).
        retention_days: finished rows older than this are removed by ``prune()`` (the
            store's bound: ``Outbound`` prunes every ``PRUNE_INTERVAL``; queued rows
            stay until sent or failed, kept events until taken or as old).
        clock: wall-clock seconds (``time.time``), for tests.

    Attributes:
        account: whose rows this view reads and writes.
        unwritable: why the last write failed, until ``probe()`` succeeds; None while
            the file is writable (shared by every view of the file).
        on_unwritable: called with the reason when a write fails (the file was
            writable before), on every view: the owner of each view's retries sets it.

    Raises:
        StoreDamaged: the file is not an SQLite database, or a damaged one.
        sqlite3.Error: it cannot be opened (locked for ``OPEN_TIMEOUT``, not writable,
            the disk is full). ``open_store`` says what to do about each.
    """

    def __init__(self, path: Path, *, retention_days: float = RETENTION_DAYS,
                 clock=time.time) -> None:
        self.path = Path(path)
        self.retention_days = retention_days
        self.clock = clock
        self.account = 0
        self.on_unwritable: Optional[Callable[[str], None]] = None
        self._file = _File()
        self._file.views.append(self)
        _make_private(self.path)
        if os.path.getsize(self.path):
            _check(self.path)
        # isolation_level=None: autocommit, so no statement leaves a transaction open.
        self._file.db = sqlite3.connect(str(self.path), isolation_level=None,
                                   timeout=OPEN_TIMEOUT)
        try:
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._create_or_upgrade()
            self._db.execute("PRAGMA busy_timeout = %d" % (BUSY_TIMEOUT * 1000))
        except sqlite3.DatabaseError as error:
            self.close()
            if type(error) is sqlite3.DatabaseError:        # as in _check
                raise StoreDamaged(str(error)) from None
            raise
        except BaseException:
            self.close()
            raise

    def _create_or_upgrade(self) -> None:
        """Create the tables, or bring an older file's to ``SCHEMA_VERSION``: in one
        transaction, so a crash half-way leaves the old schema."""
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            return
        exists = self._db.execute("SELECT 1 FROM sqlite_master WHERE name = 'messages'"
                                  ).fetchone() is not None
        self._db.execute("BEGIN IMMEDIATE")
        try:
            if exists:
                for target in range(version + 1, SCHEMA_VERSION + 1):
                    for statement in _UPGRADES[target]:
                        self._db.execute(statement)
            for statement in _SCHEMA:
                self._db.execute(statement)
            self._db.execute("PRAGMA user_version = %d" % SCHEMA_VERSION)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    @property
    def _db(self) -> Optional[sqlite3.Connection]:
        return self._file.db

    @property
    def unwritable(self) -> Optional[str]:
        return self._file.unwritable

    @unwritable.setter
    def unwritable(self, reason: Optional[str]) -> None:
        self._file.unwritable = reason

    def for_account(self, account: int) -> "Store":
        """Account ``account``'s view of this file: the same connection, its own rows,
        its own ``on_unwritable``. ``forget()`` it when the account goes."""
        view = object.__new__(Store)
        view.path, view.retention_days, view.clock = self.path, self.retention_days, \
            self.clock
        view.account, view.on_unwritable, view._file = account, None, self._file
        self._file.views.append(view)
        return view

    def forget(self) -> None:
        """This view is no longer used: a failure is not told to it any more."""
        if self in self._file.views:
            self._file.views.remove(self)

    def adopt(self) -> int:
        """Make the rows of account 0 (written before rows had an account) this view's.
        Returns how many messages changed hands."""
        moved = self._write("UPDATE messages SET account = ? WHERE account = 0",
                            (self.account,)).rowcount
        for table in ("undelivered_events", "received_pictures", "discussions"):
            self._write("UPDATE %s SET account = ? WHERE account = 0" % table,
                        (self.account,))
        return moved

    def close(self) -> None:
        """Close the file (for every view). Safe to call twice."""
        if self._file.db is not None:
            self._file.db.close()
            self._file.db = None

    # -- the two ways to the file: every statement goes through one of them ------------

    def _read(self, sql: str, params: Tuple = ()) -> List[sqlite3.Row]:
        try:
            return self._db.execute(sql, params).fetchall()
        except sqlite3.Error as error:
            raise StoreUnavailable(str(error)) from None

    def _write(self, sql: str, params: Tuple = ()) -> sqlite3.Cursor:
        if self.unwritable is not None:
            raise StoreUnavailable(self.unwritable)
        try:
            return self._db.execute(sql, params)
        except sqlite3.Error as error:
            self._failed(str(error))
            raise StoreUnavailable(str(error)) from None

    def _failed(self, reason: str) -> None:
        self.unwritable = reason
        for view in list(self._file.views):
            if view.on_unwritable is not None:
                view.on_unwritable(reason)

    def probe(self) -> Optional[str]:
        """Try to take the write lock (and let it go at once), even after a failure.
        Returns None when the file can be written again (``unwritable`` is cleared),
        else the reason. A full disk is only found by the next write."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("ROLLBACK")
        except sqlite3.Error as error:
            self.unwritable = str(error)
            return self.unwritable
        self.unwritable = None
        return None

    # -- messages ----------------------------------------------------------------------

    def add_received(self, *, chat: str, target: Optional[int], user_id: Optional[int],
                     text: str, data: Dict[str, Any], time: Optional[float] = None) -> int:
        """Record a received message; returns its ``message_id``."""
        now = self.clock()
        cursor = self._write(
            "INSERT INTO messages (account, direction, chat, target, user_id, text, data, "
            "time, status, updated) VALUES (?, 'in', ?, ?, ?, ?, ?, ?, 'received', ?)",
            (self.account, chat, target, user_id, text, json.dumps(data, ensure_ascii=False),
             time or now, now))
        return cursor.lastrowid

    def add_outgoing(self, *, chat: str, target: int, user_id: int, text: str,
                     data: Dict[str, Any], origin: str = "api",
                     idempotency_key: Optional[str] = None) -> Tuple[int, bool]:
        """Queue a message to send (``origin``: ``api`` or ``plugin``). Returns
        ``(message_id, created)``: with an ``idempotency_key`` already used, the earlier
        message's id and False."""
        if idempotency_key is not None:
            rows = self._read("SELECT id FROM messages WHERE account = ? AND "
                              "idempotency_key = ?", (self.account, idempotency_key))
            if rows:
                return rows[0]["id"], False
        now = self.clock()
        cursor = self._write(
            "INSERT INTO messages (account, direction, chat, target, user_id, text, data, "
            "time, status, idempotency_key, updated, origin) VALUES (?, 'out', ?, ?, ?, ?, "
            "?, ?, 'queued', ?, ?, ?)", (self.account, chat, target, user_id, text,
                                   json.dumps(data, ensure_ascii=False), now,
                                   idempotency_key, now, origin))
        return cursor.lastrowid, True

    def get(self, message_id: int) -> Optional[StoredMessage]:
        rows = self._read("SELECT * FROM messages WHERE id = ? AND account = ?",
                          (message_id, self.account))
        return StoredMessage(rows[0]) if rows else None

    def next_queued(self) -> Optional[StoredMessage]:
        """The oldest outgoing row still to hand to the client, or None."""
        rows = self._read("SELECT * FROM messages WHERE account = ? AND direction = 'out' "
                          "AND status = 'queued' ORDER BY id LIMIT 1", (self.account,))
        return StoredMessage(rows[0]) if rows else None

    def queued(self) -> List[StoredMessage]:
        """The outgoing rows still to hand to the client, oldest first."""
        rows = self._read("SELECT * FROM messages WHERE account = ? AND direction = 'out' "
                          "AND status = 'queued' ORDER BY id", (self.account,))
        return [StoredMessage(row) for row in rows]

    def pending(self) -> List[StoredMessage]:
        """The outgoing rows still ``queued`` or ``sending``, oldest first."""
        rows = self._read("SELECT * FROM messages WHERE account = ? AND direction = 'out' "
                          "AND status IN ('queued', 'sending') ORDER BY id", (self.account,))
        return [StoredMessage(row) for row in rows]

    def mark_sending(self, *message_ids: int) -> Set[int]:
        """``queued`` -> ``sending`` for each row named, in one transaction synced to the
        disk (``synchronous=FULL``: one sync for all of them) before it returns: call it
        before a message may reach the network. Returns the ids that were ``queued`` and
        are now ``sending`` (any other row is left as it was).

        Raises:
            StoreUnavailable: nothing written; every row is as it was.
        """
        if self.unwritable is not None:
            raise StoreUnavailable(self.unwritable)
        marked: Set[int] = set()
        try:
            self._db.execute("PRAGMA synchronous=FULL")
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    now = self.clock()
                    for message_id in message_ids:
                        if self._db.execute(
                                "UPDATE messages SET status = 'sending', updated = ? "
                                "WHERE id = ? AND status = 'queued'",
                                (now, message_id)).rowcount == 1:
                            marked.add(message_id)
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
            finally:
                self._db.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error as error:
            self._failed(str(error))
            raise StoreUnavailable(str(error)) from None
        return marked

    def ask_sending(self, message_id: int, answer: SendingAnswer) -> bool:
        """Put a row in the file's next batch for ``mark_sending``: the disk's sync, a
        few milliseconds that block the loop, is then paid once for every row asked
        before ``flush_sending()`` runs, whichever account's, not once a message.

        ``answer(marked, None)`` is called by that ``flush_sending()`` (marked: the row
        is now ``sending``; False: it was not ``queued``), or ``answer(False, reason)``
        when the batch could not be written (the row is still ``queued``).

        Returns True when the batch was empty: the caller then has ``flush_sending()``
        run soon (the store knows no event loop).
        """
        first = not self._file.sending
        self._file.sending[message_id] = answer
        return first

    def withdraw_sending(self, message_id: int) -> None:
        """Take a row out of the batch ``ask_sending`` put it in: it stays ``queued``
        and its answer is never called."""
        self._file.sending.pop(message_id, None)

    def flush_sending(self) -> None:
        """Mark every row of the batch ``sending`` in one synced transaction, then give
        each its answer (in the order asked)."""
        batch, self._file.sending = self._file.sending, {}
        if not batch:
            return
        reason: Optional[str] = None
        marked: Set[int] = set()
        if self._db is None:
            reason = "the store is closed"
        else:
            try:
                marked = self.mark_sending(*batch)
            except StoreUnavailable as error:
                reason = error.reason
        for message_id, answer in batch.items():
            try:
                answer(message_id in marked, reason)
            except Exception:
                log.exception("the answer for message %d failed", message_id)

    def set_status(self, message_id: int, status: str, *, retcode: Optional[int] = None,
                   error: Optional[str] = None) -> None:
        self._write("UPDATE messages SET status = ?, retcode = ?, error = ?, updated = ? "
                    "WHERE id = ?", (status, retcode, error, self.clock(), message_id))

    def recover(self) -> int:
        """At startup: rows left ``sending`` by a dead process become ``ambiguous``
        (never sent again). Returns how many."""
        cursor = self._write(
            "UPDATE messages SET status = 'ambiguous', error = 'the daemon stopped while "
            "it was being sent', updated = ? WHERE account = ? AND direction = 'out' AND "
            "status = 'sending'", (self.clock(), self.account))
        return cursor.rowcount

    def counts(self) -> Dict[str, int]:
        """Messages by status (``received``, ``queued``, ``sent``, ...)."""
        rows = self._read("SELECT status, COUNT(*) AS n FROM messages WHERE account = ? "
                          "GROUP BY status", (self.account,))
        return {row["status"]: row["n"] for row in rows}

    # -- undelivered events ------------------------------------------------------------

    def keep_event(self, url: str, body: bytes, error: str) -> int:
        """An event ``url`` did not take: keep it (``undelivered_events``) until it does.
        Returns its row id: later events get higher ones, so the ids are the order in
        which they are to be posted."""
        return self._write("INSERT INTO undelivered_events (account, url, body, time, error) "
                           "VALUES (?, ?, ?, ?, ?)", (self.account, url, body.decode("utf-8"),
                                                      self.clock(), error)).lastrowid

    def kept_event(self, url: str, after: int = 0) -> Optional[Tuple[int, bytes]]:
        """The oldest event kept for ``url`` whose id is above ``after``: ``(id, body)``,
        or None."""
        rows = self._read("SELECT id, body FROM undelivered_events WHERE account = ? AND "
                          "url = ? AND id > ? ORDER BY id LIMIT 1", (self.account, url, after))
        return (rows[0]["id"], rows[0]["body"].encode("utf-8")) if rows else None

    def forget_events(self, url: str, upto: int) -> None:
        """Remove the events kept for ``url`` up to id ``upto``: posted at last."""
        self._write("DELETE FROM undelivered_events WHERE account = ? AND url = ? AND "
                    "id <= ?", (self.account, url, upto))

    def take_events(self, url: str, limit: int) -> List[bytes]:
        """Remove and return up to ``limit`` kept events for ``url``, oldest first."""
        rows = self._read("SELECT id, body FROM undelivered_events WHERE account = ? AND "
                          "url = ? ORDER BY id LIMIT ?", (self.account, url, limit))
        if rows:
            self.forget_events(url, rows[-1]["id"])
        return [row["body"].encode("utf-8") for row in rows]

    def undelivered(self, url: Optional[str] = None) -> int:
        """How many events this account keeps (for ``url``, or for any)."""
        if url is None:
            return self._read("SELECT COUNT(*) FROM undelivered_events WHERE account = ?",
                              (self.account,))[0][0]
        return self._read("SELECT COUNT(*) FROM undelivered_events WHERE account = ? AND "
                          "url = ?", (self.account, url))[0][0]

    # -- discussions -------------------------------------------------------------------

    def discussions(self) -> List[Tuple[int, int, Optional[int], str]]:
        """Every discussion this account gave an id: ``(discuss_id, did, owner, name)``."""
        return [(row["discuss_id"], row["did"], row["owner"], row["name"]) for row in
                self._read("SELECT discuss_id, did, owner, name FROM discussions WHERE "
                           "account = ?", (self.account,))]

    def save_discussion(self, discuss_id: int, did: int, owner: Optional[int],
                        name: str) -> None:
        """Remember what discussion ``discuss_id`` is now."""
        self._write("INSERT OR REPLACE INTO discussions (account, discuss_id, did, owner, "
                    "name, seen) VALUES (?, ?, ?, ?, ?, ?)",
                    (self.account, discuss_id, did, owner, name, self.clock()))

    # -- received pictures -------------------------------------------------------------

    def keep_picture(self, name: str, data: Dict[str, Any]) -> None:
        """Remember what fetching the received picture ``name`` needs."""
        self._write("INSERT OR REPLACE INTO received_pictures (account, name, data, time) "
                    "VALUES (?, ?, ?, ?)", (self.account, name, json.dumps(data),
                                            self.clock()))

    def picture(self, name: str) -> Optional[Dict[str, Any]]:
        """What ``keep_picture`` kept for ``name``, or None."""
        rows = self._read("SELECT data FROM received_pictures WHERE account = ? AND "
                          "name = ?", (self.account, name))
        return json.loads(rows[0]["data"]) if rows else None

    # -- retention ---------------------------------------------------------------------

    def prune(self) -> int:
        """Remove this account's finished messages, kept events and received pictures
        older than ``retention_days``; queued rows stay whatever their age. Returns how
        many rows went."""
        cutoff = self.clock() - self.retention_days * 86400
        gone = self._write("DELETE FROM messages WHERE account = ? AND time < ? AND status "
                           "NOT IN ('queued', 'sending')", (self.account, cutoff)).rowcount
        for table in ("undelivered_events", "received_pictures"):
            gone += self._write("DELETE FROM %s WHERE account = ? AND time < ?" % table,
                                (self.account, cutoff)).rowcount
        return gone


# --- opening, whatever is found ----------------------------------------------------------

def _make_private(path: Path) -> None:
    """Create the database, its ``-wal`` and its ``-shm`` with mode 0600 before SQLite
    opens them, and make files an older version left 0600: all hold message text, and
    SQLite would create them by the process's umask (0644 under umask 022; it gives the
    ``-wal`` and ``-shm`` the database's mode). The umask itself is the process's, not
    ours to change.

    Raises:
        OSError: a file cannot be created or changed (``open_store`` says what to do).
    """
    for suffix in ("", "-wal", "-shm"):
        name = path.with_name(path.name + suffix)
        fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.fchmod(fd, 0o600)
        finally:
            os.close(fd)


def _check(path: Path) -> None:
    """``PRAGMA quick_check`` of the file, opened read-only: a read-write connection to
    a damaged file could fold its WAL into it, or delete it, on closing, and what is
    moved aside must be what was found.

    Raises:
        StoreDamaged: the file is not an SQLite database, or a damaged one.
        sqlite3.Error: it cannot be read.
    """
    db = sqlite3.connect("file:%s?mode=ro" % pathname2url(str(path)), uri=True)
    try:
        faults = [row[0] for row in db.execute("PRAGMA quick_check(3)")]
    except sqlite3.DatabaseError as error:
        # Busy, locked, read-only, full, cannot open: OperationalError. A file that is
        # not a database, or a damaged one: DatabaseError itself.
        if type(error) is sqlite3.DatabaseError:
            raise StoreDamaged(str(error)) from None
        raise
    finally:
        db.close()
    if faults != ["ok"]:
        raise StoreDamaged("; ".join(faults))


#: The files of a store besides the database itself.
COMPANIONS = ("-wal", "-shm", "-journal")


def move_aside(path: Path) -> Path:
    """Rename ``path`` (and its ``COMPANIONS`` that exist) to
    ``NAME.bad-YYYYmmddTHHMMSS`` (UTC; ``-2``, ``-3`` ... after it rather than over an
    earlier one; ``-wal`` ... after that). Returns the new path. Each file is made 0600.

    Raises:
        OSError: a rename failed (what was renamed stays renamed).
    """
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    aside, number = path.with_name("%s.bad-%s" % (path.name, stamp)), 1
    while any(os.path.lexists(aside.with_name(aside.name + suffix))
              for suffix in ("",) + COMPANIONS):
        number += 1
        aside = path.with_name("%s.bad-%s-%d" % (path.name, stamp, number))
    os.replace(path, aside)
    os.chmod(aside, 0o600)
    for suffix in COMPANIONS:
        companion = path.with_name(path.name + suffix)
        if os.path.lexists(companion):
            os.replace(companion, aside.with_name(aside.name + suffix))
            os.chmod(aside.with_name(aside.name + suffix), 0o600)
    return aside


def open_store(path: Path, **options: Any) -> Store:
    """The ``Store`` at ``path``, created if absent. A file that is not an SQLite
    database, or a damaged one, is moved aside (``move_aside``) and a fresh store
    started, with one warning line naming both: a bad file must not stop every start.

    Raises:
        StoreError: the file cannot be opened (locked, not writable, the disk full), or
            a damaged one cannot be moved aside, or even a fresh one fails; its message
            names the file and what to do.
    """
    try:
        return Store(path, **options)
    except StoreDamaged as error:
        damage = str(error)
    except (sqlite3.Error, OSError) as error:
        raise _open_error(path, error) from None
    try:
        aside = move_aside(path)
    except OSError as error:
        raise StoreError("the message store %s is damaged (%s) and cannot be moved aside: "
                         "%s; move it (and any %s-wal, -shm) away by hand"
                         % (path, damage, error.strerror or error, path.name)) from None
    log.warning("the message store %s is damaged (%s): moved to %s, starting with an "
                "empty one", path, damage, aside.name)
    try:
        return Store(path, **options)
    except (StoreDamaged, sqlite3.Error, OSError) as error:
        raise _open_error(path, error) from None


def _open_error(path: Path, error: Exception) -> StoreError:
    reason = (error.strerror or str(error)) if isinstance(error, OSError) else str(error)
    if "locked" in reason or "busy" in reason:
        return StoreError("the message store %s is locked by another process (%s): start "
                          "again once it is done (a backup? an sqlite3 shell?)"
                          % (path, reason), temporary=True)
    if "full" in reason:
        advice = "free some space on its disk"
    else:
        advice = "check that state_dir and the file can be written by this user"
    return StoreError("cannot open the message store %s: %s; %s" % (path, reason, advice))
