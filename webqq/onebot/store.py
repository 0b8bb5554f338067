"""The message store: one SQLite file in state_dir (``messages.sqlite3``).

store: what the daemon must remember across a crash. Every message received and sent
(its OneBot ``message_id`` is the row id), the one outbound queue itself (the rows still
``queued``, whoever asked for them: ``origin`` is ``api`` or ``plugin``), and the events
no webhook took. It knows nothing of Tornado or WebQQ: plain values in, plain values out.

What it must never do: hold a transaction open across an ``await`` or a callback. Each
method is one or two short statements in autocommit mode; SQLite calls are quick local
file I/O, so they run synchronously on the IOLoop (no threads).

The life of an outgoing row (``status``)::

    queued --(its first part handed to the network)--> sending   (client: Transmitting)
    queued --> failed                               (refused before it left: expired,
                                                     unknown target)
    sending --> sent | failed | ambiguous          (the client's SendFinished)
    sending --> queued                              (a clean stop after an attempt
                                                     that never left)
    sending --> ambiguous                           (found at startup: the daemon died
                                                     while it was being sent)

A row the client holds but has not transmitted (pacing, waiting to be online) stays
``queued``, so it is sent at the next start; a row found ``sending`` at startup is never
sent again: a message accepted by the API is sent at most once, and exactly once unless
the process died while it was on the wire.

Durability: WAL journal with ``synchronous=NORMAL``: a committed row survives the process
being killed (SIGKILL); the last transactions may be lost to a power cut.
"""
import json
import sqlite3
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

__all__ = ["Store", "StoredMessage", "RETENTION_DAYS"]

#: Days finished messages and undelivered events are kept (a future ``[api]`` key).
RETENTION_DAYS = 30.0
#: Statuses of an outgoing row that still has to be sent.
PENDING = ("queued", "sending")

#: The tables, one statement each (the comments hold semicolons).
_SCHEMA = ("""
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,   -- the OneBot message_id
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
    idempotency_key TEXT UNIQUE,            -- optional, from the sender
    updated REAL NOT NULL,
    origin TEXT NOT NULL DEFAULT 'api'      -- out: who asked, 'api' or 'plugin'
)""", """
CREATE INDEX IF NOT EXISTS messages_pending ON messages (status) WHERE direction = 'out'
""", """
CREATE TABLE IF NOT EXISTS undelivered_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    url TEXT NOT NULL,
    body TEXT NOT NULL,                     -- the event JSON as it was to be POSTed
    time REAL NOT NULL,
    error TEXT
)""")
#: ``PRAGMA user_version`` of the schema above, and how to bring an older file to it.
SCHEMA_VERSION = 1
_UPGRADES = {
    # 0 -> 1: plugin replies joined the queue (they were saved to outbox-QQ.json).
    1: "ALTER TABLE messages ADD COLUMN origin TEXT NOT NULL DEFAULT 'api'",
}


class StoredMessage:
    """A row of ``messages`` as a value (attributes named as the columns; ``data`` is
    the decoded JSON)."""

    __slots__ = ("id", "direction", "chat", "target", "user_id", "text", "data", "time",
                 "status", "retcode", "error", "idempotency_key", "updated", "origin")

    def __init__(self, row: sqlite3.Row) -> None:
        for name in self.__slots__:
            setattr(self, name, row[name])
        self.data = json.loads(row["data"] or "{}")

    def __repr__(self) -> str:
        return "<StoredMessage %d %s %s %s>" % (self.id, self.direction, self.chat,
                                               self.status)


class Store:
    """The SQLite file of one daemon.

    Args:
        path: the database file (created with its tables if absent).
        retention_days: finished rows older than this are removed by ``prune()``.
        clock: wall-clock seconds (``time.time``), for tests.
    """

    def __init__(self, path: Path, *, retention_days: float = RETENTION_DAYS,
                 clock=time.time) -> None:
        self.path = Path(path)
        self.retention_days = retention_days
        self.clock = clock
        # isolation_level=None: autocommit, so no statement leaves a transaction open.
        self._db = sqlite3.connect(str(self.path), isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._create_or_upgrade()
        self.path.chmod(0o600)

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
                    self._db.execute(_UPGRADES[target])
            for statement in _SCHEMA:
                self._db.execute(statement)
            self._db.execute("PRAGMA user_version = %d" % SCHEMA_VERSION)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        """Close the file. Safe to call twice."""
        if self._db is not None:
            self._db.close()
            self._db = None

    # -- messages ----------------------------------------------------------------------

    def add_received(self, *, chat: str, target: Optional[int], user_id: Optional[int],
                     text: str, data: Dict[str, Any], time: Optional[float] = None) -> int:
        """Record a received message; returns its ``message_id``."""
        now = self.clock()
        cursor = self._db.execute(
            "INSERT INTO messages (direction, chat, target, user_id, text, data, time, "
            "status, updated) VALUES ('in', ?, ?, ?, ?, ?, ?, 'received', ?)",
            (chat, target, user_id, text, json.dumps(data, ensure_ascii=False),
             time or now, now))
        return cursor.lastrowid

    def add_outgoing(self, *, chat: str, target: int, user_id: int, text: str,
                     data: Dict[str, Any], origin: str = "api",
                     idempotency_key: Optional[str] = None) -> Tuple[int, bool]:
        """Queue a message to send (``origin``: ``api`` or ``plugin``). Returns
        ``(message_id, created)``: with an ``idempotency_key`` already used, the earlier
        message's id and False."""
        if idempotency_key is not None:
            row = self._db.execute("SELECT id FROM messages WHERE idempotency_key = ?",
                                   (idempotency_key,)).fetchone()
            if row is not None:
                return row["id"], False
        now = self.clock()
        cursor = self._db.execute(
            "INSERT INTO messages (direction, chat, target, user_id, text, data, time, "
            "status, idempotency_key, updated, origin) VALUES ('out', ?, ?, ?, ?, ?, ?, "
            "'queued', ?, ?, ?)", (chat, target, user_id, text,
                                   json.dumps(data, ensure_ascii=False), now,
                                   idempotency_key, now, origin))
        return cursor.lastrowid, True

    def get(self, message_id: int) -> Optional[StoredMessage]:
        row = self._db.execute("SELECT * FROM messages WHERE id = ?",
                               (message_id,)).fetchone()
        return StoredMessage(row) if row is not None else None

    def queued(self) -> List[StoredMessage]:
        """The outgoing rows still to hand to the client, oldest first."""
        rows = self._db.execute("SELECT * FROM messages WHERE direction = 'out' AND "
                                "status = 'queued' ORDER BY id").fetchall()
        return [StoredMessage(row) for row in rows]

    def set_status(self, message_id: int, status: str, *, retcode: Optional[int] = None,
                   error: Optional[str] = None) -> None:
        self._db.execute("UPDATE messages SET status = ?, retcode = ?, error = ?, "
                         "updated = ? WHERE id = ?",
                         (status, retcode, error, self.clock(), message_id))

    def recover(self) -> int:
        """At startup: rows left ``sending`` by a dead process become ``ambiguous``
        (never sent again). Returns how many."""
        cursor = self._db.execute(
            "UPDATE messages SET status = 'ambiguous', error = 'the daemon stopped while "
            "it was being sent', updated = ? WHERE direction = 'out' AND status = "
            "'sending'", (self.clock(),))
        return cursor.rowcount

    def counts(self) -> Dict[str, int]:
        """Messages by status (``received``, ``queued``, ``sent``, ...)."""
        rows = self._db.execute("SELECT status, COUNT(*) AS n FROM messages GROUP BY "
                                "status").fetchall()
        return {row["status"]: row["n"] for row in rows}

    # -- undelivered events ------------------------------------------------------------

    def keep_event(self, url: str, body: bytes, error: str) -> None:
        """An event no retry could POST: keep it (``undelivered_events``)."""
        self._db.execute("INSERT INTO undelivered_events (url, body, time, error) VALUES "
                         "(?, ?, ?, ?)", (url, body.decode("utf-8"), self.clock(), error))

    def take_events(self, url: str, limit: int) -> List[bytes]:
        """Remove and return up to ``limit`` kept events for ``url``, oldest first."""
        rows = self._db.execute("SELECT id, body FROM undelivered_events WHERE url = ? "
                                "ORDER BY id LIMIT ?", (url, limit)).fetchall()
        if rows:
            self._db.execute("DELETE FROM undelivered_events WHERE id <= ? AND url = ?",
                             (rows[-1]["id"], url))
        return [row["body"].encode("utf-8") for row in rows]

    def undelivered(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM undelivered_events").fetchone()[0]

    # -- retention ---------------------------------------------------------------------

    def prune(self) -> int:
        """Remove finished messages and kept events older than ``retention_days``;
        queued rows stay whatever their age. Returns how many rows went."""
        cutoff = self.clock() - self.retention_days * 86400
        gone = self._db.execute("DELETE FROM messages WHERE time < ? AND status NOT IN "
                                "('queued', 'sending')", (cutoff,)).rowcount
        gone += self._db.execute("DELETE FROM undelivered_events WHERE time < ?",
                                 (cutoff,)).rowcount
        return gone
