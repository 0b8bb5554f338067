"""HTTPStream's public names never repeat one of Tornado's (issue 10): tests and
callers import both, and one name for two meanings is a trap."""
import importlib
import inspect

import webqq.http_stream

TORNADO_MODULES = ["tornado.iostream", "tornado.httpclient", "tornado.simple_httpclient",
                   "tornado.curl_httpclient", "tornado.http1connection", "tornado.httputil",
                   "tornado.netutil", "tornado.tcpclient", "tornado.web", "tornado.websocket",
                   "tornado.gen", "tornado.util"]


def tornado_names():
    names = set()
    for module_name in TORNADO_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:  # curl_httpclient needs pycurl
            continue
        names.update(name for name, value in vars(module).items()
                     if inspect.isclass(value) and not name.startswith("_"))
    return names


#: Shared names kept on purpose. HTTPTimeoutError is also in
#: tornado.simple_httpclient; it is the name STYLE.md gives (item 9) and has a
#: `.phase` Tornado's lacks, so renaming it is the lead's call, not this test's.
KEPT = {"HTTPTimeoutError"}


def test_no_public_name_is_also_tornados():
    assert set(webqq.http_stream.__all__) & tornado_names() <= KEPT


def test_closing_the_stream_has_its_own_error_name():
    assert webqq.http_stream.HTTPStreamShutdownError.__mro__[1] is webqq.http_stream.HTTPStreamError
