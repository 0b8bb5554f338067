"""What a reload changes: the keys that differ between two configurations, which of them
the running daemon takes at once, and the configuration in effect afterwards.

What it is for: ``Daemon.reload`` (SIGHUP, ``webqq reload``) calls ``compare(old, new)``,
applies the live keys and reports the others, so that ``webqq reload`` prints what waits
for a restart; ``in_effect`` is the configuration the daemon then runs with: the new
values of the live keys, the old ones of the rest.

Taken at once: logging (``[daemon]`` but ``state_dir``), the network's timeouts and
retries, ``[bot]`` (plugins, prefix, pacing), ``[plugin:NAME]`` sections, ``[api]`` (the
API is restarted), ``[alert]`` and the accounts: ``account_changes`` says which to add,
remove or restart (another QQ number, password source or era: another session), each
alone, and which only take new ``plugins``. At the next restart: ``[simulator]`` (its
servers and world), ``[hosts]`` and ``ca_file`` (the HTTP engine's routes and TLS trust),
``state_dir`` (where everything lives).

What it must never do: act (it compares values), or show a value: it names keys only,
so a changed password or token never appears in a report.
"""
import dataclasses
from typing import List, NamedTuple, Tuple

from webqq.daemon.config import AccountConfig, Config

__all__ = ["compare", "in_effect", "account_changes", "AccountChanges"]

#: (section, key) of the keys a restart takes; None stands for the whole section.
_AT_RESTART = frozenset({("simulator", None), ("hosts", None),
                         ("daemon", "state_dir"), ("network", "ca_file")})


class AccountChanges(NamedTuple):
    """What a reload does to the accounts, each a tuple of the new ``AccountConfig``
    (``removed``: the old one), in file order."""
    added: Tuple[AccountConfig, ...]
    removed: Tuple[AccountConfig, ...]
    restarted: Tuple[AccountConfig, ...]     # another session: qq, password, era
    kept: Tuple[AccountConfig, ...]          # the same session; plugins may differ


def account_changes(old: Tuple[AccountConfig, ...],
                    new: Tuple[AccountConfig, ...]) -> AccountChanges:
    """Accounts are matched by name: a name only ``new`` has is added, one only ``old``
    has is removed; a name in both is restarted when anything but ``plugins`` differs."""
    before = {account.name: account for account in old}
    after = {account.name: account for account in new}
    restarted, kept = [], []
    for account in new:
        previous = before.get(account.name)
        if previous is not None:
            same = dataclasses.replace(previous, plugins=account.plugins) == account
            (kept if same else restarted).append(account)
    return AccountChanges(
        added=tuple(a for a in new if a.name not in before),
        removed=tuple(a for a in old if a.name not in after),
        restarted=tuple(restarted), kept=tuple(kept))


def compare(old: Config, new: Config) -> Tuple[List[str], List[str]]:
    """The keys that differ, as ``"[section] key"``, split into ``(live, at_restart)``,
    each in file order. ``[hosts]`` does not count while both embed the simulator (it
    is ignored then); the accounts are ``account_changes``'s."""
    live: List[str] = []
    at_restart: List[str] = []
    for section, key in _changed(old, new):
        name = "[%s] %s" % (section, key) if key else "[%s]" % section
        restart = (section, None) in _AT_RESTART or (section, key) in _AT_RESTART
        (at_restart if restart else live).append(name)
    return live, at_restart


def _changed(old: Config, new: Config) -> List[Tuple[str, str]]:
    changed = []
    for section in ("daemon", "network", "simulator", "bot", "api", "alert"):
        before, after = getattr(old, section), getattr(new, section)
        changed += [(section, field.name) for field in dataclasses.fields(before)
                    if getattr(before, field.name) != getattr(after, field.name)]
    embedded = old.simulator.embedded and new.simulator.embedded
    if dict(old.hosts) != dict(new.hosts) and not embedded:
        changed.append(("hosts", None))
    modules = list(old.plugin_settings) + [m for m in new.plugin_settings
                                           if m not in old.plugin_settings]
    changed += [("plugin:" + module, None) for module in modules
                if old.plugin_settings.get(module) != new.plugin_settings.get(module)]
    return changed


def in_effect(old: Config, new: Config) -> Config:
    """``new``, but with ``old``'s values where a restart is needed to change them, and
    ``old``'s accounts: the daemon replaces them with those it could start."""
    return dataclasses.replace(
        new, accounts=old.accounts, simulator=old.simulator, hosts=old.hosts,
        daemon=dataclasses.replace(new.daemon, state_dir=old.daemon.state_dir),
        network=dataclasses.replace(new.network, ca_file=old.network.ca_file))
