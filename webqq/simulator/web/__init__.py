"""webqq.simulator.web: the chat page, where a person meets the bot in a browser.

``http://127.0.0.1:PORT/`` on the simulator's plain port (stand-alone or embedded in the
daemon) serves a page in the spirit of the 2013 WebQQ desktop: the world's people and
groups on the left; pick who you are, open a chat with a bot's account, a group or a
discussion, type, and see the answers appear live over a WebSocket. An operator panel
kicks, rotates, cuts off (outage) and captchas an account through /_sim/, with the
control token the server wrote into the page.

Modules: ``feed`` (the back end's messages as numbered events, remembered and fanned
out; no I/O), ``handlers`` (the page, its files, the WebSocket). The page is plain HTML,
CSS and JavaScript in this package (``index.html``, ``static/``): no build step, nothing
fetched from elsewhere, every message rendered as text.

It must never import client-side code, reach the network beyond its own port, or show
the control token to anything but a page served on a loopback name.
"""
from .feed import ChatFeed
from .handlers import routes

__all__ = ["ChatFeed", "routes"]
