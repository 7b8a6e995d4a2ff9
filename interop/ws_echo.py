"""A WebSocket client that no one here wrote (Python `websockets`, from PyPI)
against the demo's `/ws` echo.

    python3 ws_echo.py PORT CASE

CASE `echo`: one connection; a text message, a binary one and a 200 KB binary one,
each echoed byte for byte; then the close handshake, which must end with the
server's close frame (code 1000).
CASE `concurrent`: 20 connections at once, 10 messages each, all echoed.

Prints `OK <what>` and exits 0, or prints the reason and exits 1.
"""

import asyncio
import os
import sys

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedOK


async def echo(uri):
    async with connect(uri, max_size=2**20) as ws:
        for msg in ["hello from python", b"\x00\x01\xfe\xff", os.urandom(200_000)]:
            await ws.send(msg)
            back = await ws.recv()
            if back != msg:
                raise SystemExit(f"echo differs: sent {len(msg)}, got {len(back)}")
        await ws.close()
        if ws.close_code != 1000:
            raise SystemExit(f"close code {ws.close_code}")
    return "3 messages echoed (200 KB binary included), close 1000"


async def one(uri, i):
    async with connect(uri) as ws:
        for j in range(10):
            msg = f"{i}/{j}"
            await ws.send(msg)
            if await ws.recv() != msg:
                raise SystemExit(f"connection {i}: message {j} not echoed")
        await ws.close()
        try:
            await ws.recv()
        except ConnectionClosedOK:
            pass


async def concurrent(uri):
    await asyncio.gather(*(one(uri, i) for i in range(20)))
    return "20 connections x 10 messages echoed"


async def main():
    port, case = sys.argv[1], sys.argv[2]
    uri = f"ws://127.0.0.1:{port}/ws"
    what = await asyncio.wait_for({"echo": echo, "concurrent": concurrent}[case](uri), 20)
    print(f"OK {what}")


asyncio.run(main())
