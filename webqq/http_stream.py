"""The public import path of the HTTP engine, kept for users of the first layout.

``from webqq.http_stream import HTTPStream`` is the documented way in (README, DESIGN);
the engine itself lives in :mod:`webqq.http.stream`, whose public names this re-exports.
"""
from webqq.http.stream import *  # noqa: F401,F403
from webqq.http.stream import __all__  # noqa: F401
