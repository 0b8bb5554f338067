"""Helpers of the media tests: a client online on the simulator whose stream keeps every
request it is given, sample pictures, the simulator's side of a picture, and a world
where the account administers a group."""
import base64
import hashlib
from typing import Dict, List
from urllib.parse import parse_qsl, urlsplit

import pytest
from client_helpers import POLL_HOLD, Recorder, World
from simulator_helpers import default_world

from webqq.http_stream import HTTPStream

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01" + bytes(range(256)) * 4
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(200))
GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00" + bytes(range(100))


class SpyStream(HTTPStream):
    """An HTTPStream that keeps every request it is given (a redirect it follows is the
    same request), to read what the client asked."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.requests: list = []

    def add_request(self, request, *args, **kwargs):
        self.requests.append(request)
        return super().add_request(request, *args, **kwargs)

    def asked(self, path: str) -> List[Dict[str, str]]:
        """The query of each request made to ``path``, in order."""
        return [dict(parse_qsl(urlsplit(r.full_url).query, keep_blank_values=True))
                for r in self.requests if urlsplit(r.full_url).path == path]


def spy_stream(world) -> SpyStream:
    return SpyStream(hosts=world.sim.hosts, ca_file=world.sim.ca_file,
                     request_timeout=POLL_HOLD + 5, connect_timeout=2)


async def online(world, **kwargs):
    """A client of ``world`` on a ``SpyStream``, ONLINE: ``(client, events, stream)``."""
    stream = spy_stream(world)
    client = world.client(stream=stream, **kwargs)
    events = Recorder(client)
    client.start()
    await events.online()
    return client, events, stream


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


async def kept_by_simulator(world, digest: str) -> bytes:
    """The bytes the simulator keeps under the SHA-1 /_sim/sent named."""
    return base64.b64decode((await world.control.call("picture?sha1=" + digest))["base64"])


@pytest.fixture
def admin_world(io_loop, tmp_path):
    """The built-in world where 10001 administers group 30001, plus group 30002 that it
    is not in."""
    data = default_world()
    (group,) = data["groups"]
    for member in group["members"]:
        member["admin"] = member["qq"] == 10001 or member.get("admin", False)
    data["groups"].append({"number": 30002, "name": "elsewhere", "owner": 20001,
                           "members": [{"qq": 20002, "admin": True}]})
    w = World(io_loop, tmp_path)
    w.start_sim(world=data)
    yield w
    w.close()
