"""webqq: a WebQQ (2013 protocol) client daemon on Tornado's IOLoop.

The package is one sub-package per layer; a layer imports only the layers below it
(``tests/test_layers.py`` enforces this)::

    daemon/      the process: command line, config, pidfile, signals, logs   (top)
    onebot/      the OneBot v11 API, its mapping and its SQLite store
    plugins/     the bot's behaviour: handlers loaded by module name
    client/      WebQQClient: login, poll, heartbeat, contacts, sending
    qq/          the WebQQ wire protocol as plain functions, no I/O
    http/        HTTPStream: HTTP/1.1 on raw sockets on the IOLoop       (bottom)
    statedir     the files kept in state_dir, and how they are written    (bottom)
    tasks        background coroutines owned by one object               (bottom)

``simulator/`` stands beside them: a WebQQ server that imports nothing of the client
side, so that it can never check the client with the client's own code.
"""

__version__ = "0.1.0"
