"""webqq: a WebQQ (2013 protocol) client daemon on Tornado's IOLoop."""

__version__ = "0.1.0"
