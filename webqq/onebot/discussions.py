"""Discussion ids that last: the ``discuss_id`` the OneBot API hands out.

discussions: ``DiscussionIds``. WebQQ gives a discussion no public number, only its
``did``, and a did need not survive the session (the embedded simulator draws new ones
at every start: a bot saw 1536836207, then 2358630789, then 4230747227 for one
discussion). Bots keep ids in their databases, so the API hands out ids of its own,
kept in the store's ``discussions`` table:

* A discussion seen for the first time gets its did of the moment as its id (so ids
  look like dids, and a plugin's did, the same number in that session, still names it).
* Later it is the same discussion when it has the same did and the same owner (QQ
  number) or name, or else the same owner and name; the table then follows its new
  did and name. One renamed while its did changed too (the daemon stopped meanwhile)
  is a new discussion.
* ``find`` takes an id, or a did of the current contacts (what plugins know); anything
  else is an unknown discussion, never a did passed on to the server (which answered
  "retcode 108").

The matching runs again whenever the client's contacts object changes (it is replaced
whole at every load). When the store cannot be read or written, the current dids serve
as ids meanwhile and what is new is saved at a later match.

What it must never do: give one id to two discussions, or a discussion another id
while it runs once the store could be read.
"""
import logging
from typing import Any, Dict, Optional, Tuple

from webqq.client.contacts import Contacts, Discussion
from webqq.onebot.store import Store, StoreUnavailable

__all__ = ["DiscussionIds", "owner_qq", "discussion_info"]

log = logging.getLogger("webqq.api")


def owner_qq(discussion: Discussion) -> Optional[int]:
    """The QQ number of a discussion's owner, if the contacts know it."""
    return next((member.qq for member in discussion.members.values()
                 if member.role == "owner"), None)


class DiscussionIds:
    """The ids of the discussions, matched to the client's current contacts.

    Args:
        store: the ``Store`` whose ``discussions`` table keeps them.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        # discuss_id -> (did, owner, name), as known; None until read from the store.
        self._known: Optional[Dict[int, Tuple[int, Optional[int], str]]] = None
        self._unsaved: Dict[int, Tuple[int, Optional[int], str]] = {}
        self._contacts: Optional[Contacts] = None       # the contacts last matched
        self._by_did: Dict[int, int] = {}               # current did -> discuss_id
        self._by_id: Dict[int, Discussion] = {}         # discuss_id -> current one

    def id_of(self, did: int, contacts: Contacts) -> int:
        """The discuss_id of the discussion whose did (now) is ``did``; a did the
        contacts do not know yet serves as its own id."""
        self._match(contacts)
        return self._by_did.get(did, did)

    def find(self, discuss_id: int, contacts: Contacts) -> Optional[Discussion]:
        """The current discussion with this id (or, failing that, this did), or None."""
        self._match(contacts)
        found = self._by_id.get(discuss_id)
        return found if found is not None else contacts.discussions.get(discuss_id)

    def listed(self, contacts: Contacts) -> Dict[int, Discussion]:
        """The current discussions by discuss_id."""
        self._match(contacts)
        return dict(self._by_id)

    # -- matching ----------------------------------------------------------------------

    def _match(self, contacts: Contacts) -> None:
        if contacts is self._contacts and not self._unsaved:
            return
        known = self._read()
        by_did = {did: discuss_id for discuss_id, (did, _o, _n) in known.items()}
        by_owner = {(owner, name): discuss_id for discuss_id, (_d, owner, name)
                    in known.items() if owner is not None}
        taken = set()
        found: Dict[int, int] = {}
        current = list(contacts.discussions.values())
        for discussion in current:                   # the same did (and owner or name)
            discuss_id = by_did.get(discussion.did)
            if discuss_id is not None:
                _did, owner, name = known[discuss_id]
                if owner == owner_qq(discussion) or name == discussion.name:
                    found[discussion.did] = discuss_id
                    taken.add(discuss_id)
        for discussion in current:                   # then the same owner and name
            if discussion.did in found:
                continue
            discuss_id = by_owner.get((owner_qq(discussion), discussion.name))
            if discuss_id is None or discuss_id in taken:
                discuss_id = discussion.did
                while discuss_id in known or discuss_id in taken:
                    discuss_id += 1                 # a did that is another's id
            found[discussion.did] = discuss_id
            taken.add(discuss_id)
        for discussion in current:
            now = (discussion.did, owner_qq(discussion), discussion.name)
            discuss_id = found[discussion.did]
            if known.get(discuss_id) != now:
                known[discuss_id] = now
                self._unsaved[discuss_id] = now
        self._by_did = found
        self._by_id = {found[d.did]: d for d in current}
        self._contacts = contacts
        self._save()

    def _read(self) -> Dict[int, Tuple[int, Optional[int], str]]:
        if self._known is None:
            try:
                rows = self.store.discussions()
            except StoreUnavailable as error:
                log.warning("discussion ids cannot be read from the store now (%s); "
                            "dids serve meanwhile", error.reason)
                return dict(self._unsaved)
            self._known = {discuss_id: (did, owner, name)
                           for discuss_id, did, owner, name in rows}
        return self._known

    def _save(self) -> None:
        if self._known is None:
            return                  # not read yet: what is new waits for the read
        for discuss_id, (did, owner, name) in list(self._unsaved.items()):
            try:
                self.store.save_discussion(discuss_id, did, owner, name)
            except StoreUnavailable as error:
                log.debug("discussion %d not saved yet: %s", discuss_id, error.reason)
                return
            del self._unsaved[discuss_id]
            log.debug("discussion %r is discuss_id %d (did %d)", name, discuss_id, did)


def discussion_info(discussion: Discussion, discuss_id: int) -> Dict[str, Any]:
    """A ``get_discuss_list`` entry (webqq's own action)."""
    return {"discuss_id": discuss_id, "discuss_name": discussion.name,
            "member_count": len(discussion.members)}
