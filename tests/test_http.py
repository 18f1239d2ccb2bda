"""Specification: a call from one service to another, over the network or in process, answers
the same way, and a peer that is gone or silent becomes one of httpx's errors in bounded time."""

import asyncio
import time

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from shared.http import ServiceClient
from tests.support.servers import ThreadedServer, free_port

pytestmark = pytest.mark.anyio


def echo_app() -> FastAPI:
    app = FastAPI()

    @app.post("/echo/{name:path}")
    async def echo(name: str, request: Request) -> Response:
        body = await request.body()
        return Response(
            content=body,
            status_code=202,
            media_type=request.headers.get("content-type"),
            headers={
                "x-raw-path": request.scope["raw_path"].decode(),
                "x-query": str(request.url.query),
                "x-request-id": request.headers.get("x-request-id", ""),
            },
        )

    @app.get("/slow")
    async def slow() -> Response:
        await asyncio.sleep(5)
        return Response("late")

    return app


@pytest.fixture(scope="module")
def server():
    running = ThreadedServer(echo_app()).start()
    yield running
    running.stop()


async def call_echo(client: ServiceClient, base_url: str) -> httpx.Response:
    return await client.request(
        "POST",
        f"{base_url}/echo/a%2Fb",
        content=b'{"signed": true}',
        params=[("region", "36"), ("region", "32"), ("q", "a b&c")],
        headers={"content-type": "application/jose", "x-request-id": "req-1"},
    )


async def test_the_network_and_the_in_process_call_answer_alike(server):
    async with ServiceClient(timeout=5) as network:
        over_network = await call_echo(network, server.url)
    transport = httpx.ASGITransport(app=echo_app())
    async with ServiceClient(timeout=5, transport=transport) as in_process:
        within = await call_echo(in_process, "http://peer")

    for answer in (over_network, within):
        assert answer.status_code == 202
        assert answer.content == b'{"signed": true}'
        assert answer.headers["content-type"] == "application/jose"
        assert answer.headers["x-raw-path"] == "/echo/a%2Fb"  # one segment, its slash escaped
        assert answer.headers["x-query"] == "region=36&region=32&q=a+b%26c"
        assert answer.headers["x-request-id"] == "req-1"
        assert answer.json() == {"signed": True}


async def test_a_peer_that_is_not_listening_is_a_connect_error_at_once():
    started = time.monotonic()
    async with ServiceClient(timeout=5) as client:
        with pytest.raises(httpx.ConnectError):
            await client.post(f"http://127.0.0.1:{free_port()}/echo/x", content=b"{}")
    assert time.monotonic() - started < 1


async def test_a_peer_that_does_not_answer_in_time_is_a_timeout(server):
    started = time.monotonic()
    async with ServiceClient(timeout=httpx.Timeout(0.3, connect=2.0)) as client:
        with pytest.raises(httpx.TimeoutException):
            await client.request("GET", f"{server.url}/slow")
    assert 0.3 <= time.monotonic() - started < 2


async def test_a_peer_that_hangs_up_mid_answer_is_a_transport_error():
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly part")
        await writer.drain()
        writer.close()

    listener = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        async with ServiceClient(timeout=5) as client:
            with pytest.raises(httpx.TransportError):
                await client.request("GET", f"http://127.0.0.1:{port}/")
    finally:
        listener.close()
        await listener.wait_closed()
