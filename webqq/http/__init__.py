"""The pieces of HTTPStream (webqq.http_stream), one concern per module.

errors      the error tree every failure belongs to
reader      strict HTTP/1.1 response framing, without I/O
retry       RetryPolicy: what is retried, after how long
resolver    host names to addresses without blocking, cached with a TTL
connection  one raw non-blocking socket on the IOLoop
cookies     CachingCookieJar: each URL's Cookie header computed once while the jar is unchanged

They know nothing of WebQQ.
"""
