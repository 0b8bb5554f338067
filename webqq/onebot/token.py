"""The OneBot access token: ``[api] token``, or one generated once into state_dir.

Its own module so that the command line can read the token without importing the web
application. It must never log or print the token.
"""
import secrets
from pathlib import Path
from typing import Any, Optional

from webqq import statedir

__all__ = ["api_token"]


def api_token(config: Any, *, create: bool = False) -> Optional[str]:
    """``[api] token``, else the token generated into state_dir (``statedir.TOKEN``).

    Args:
        config: the whole ``Config``.
        create: generate and save a token when there is none (the daemon does).

    Returns:
        The token, or None when none is configured or saved (and not ``create``). A saved
        file that is empty, blank or not ASCII counts as none: with ``create`` it is
        replaced, atomically (a temporary file, mode 0600, renamed over it).
    """
    if config.api.token:
        return config.api.token
    path = Path(config.daemon.state_dir) / statedir.TOKEN
    try:
        saved = path.read_text(encoding="ascii").strip()
    except (FileNotFoundError, UnicodeDecodeError):
        saved = ""
    if saved or not create:
        return saved or None
    token = secrets.token_urlsafe(24)
    statedir.atomic_write(path, (token + "\n").encode("ascii"))
    return token

