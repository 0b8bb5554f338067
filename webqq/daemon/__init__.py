"""The daemon: the process around one client, its plugins and its API.

What it is for: the command line (``cli``), the ini file (``config``), logging
(``logs``), and the process itself (``daemon``: pidfile, detaching, signals, the
embedded simulator). The top layer: it may import every other one; nothing imports it.
"""
