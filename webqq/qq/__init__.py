"""The WebQQ wire protocol of 2013, as plain functions and values.

What it is for: building each request (a ``urllib.request.Request``) and parsing each
reply into a frozen value or a specific ``ProtocolError``; the password and list hashes;
the message content format. May import: :mod:`webqq.http` for nothing but types, and the
standard library. Must never: open a socket, touch the IOLoop, read the clock or draw a
random number (timestamps and nonces are arguments), or keep state between calls.
"""
