"""llhttp's strict response vectors, sent by a raw socket server to HTTPStream.

Where llhttp completes a message, HTTPStream delivers the same status and body;
where llhttp refuses the bytes or a close cuts the message short, HTTPStream
reports an error and no response reaches the readback.
"""
from urllib.request import Request

import pytest

from test_http_reader import VECTORS, expected_outcome
from webqq.http_stream import HTTPStream, HTTPStreamError, RetryPolicy


@pytest.mark.gen_test
@pytest.mark.parametrize("vector", VECTORS, ids=[v.name for v in VECTORS])
async def test_vector_over_a_socket(io_loop, no_leaks, raw_server, vector):
    async def answer(stream):
        await server.read_request(stream)
        await stream.write(vector.raw)
        stream.close()
    server = raw_server(answer)
    http = HTTPStream(retry=RetryPolicy(attempts=1), max_redirects=0)
    try:
        expected = expected_outcome(vector)
        if expected is None:
            with pytest.raises(HTTPStreamError):
                await http.fetch(Request(server.url + "/"))
        else:
            response = await http.fetch(Request(server.url + "/"))
            assert (response.status, response.read()) == expected
    finally:
        http.close()
