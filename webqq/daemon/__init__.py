"""The daemon: the process around one client, its plugins and its API.

What it is for: the command line (``cli``), the ini file (``datatypes``: the value
converters; ``config``: the sections), logging (``logs``), the files other processes
read (``pidfile``: the pidfile lock, the status file), the process (``process``: exit
codes, OS effects, detaching) and the daemon itself (``daemon``: its life, signals,
the embedded simulator). The top layer: it may import every other one; nothing imports it.
"""
