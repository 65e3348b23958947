#!/usr/bin/env python3
"""Python netaio 0.0.9 peers for the slow-and-lost-peers interop tests (`slow_peers_python.rs`).

    slow_peers.py server [--seconds N]
        Prints `listening P` once bound. REQUEST_URI is answered RESPOND_URI with the request's
        uri and content, after as many milliseconds as the content says (an integer; at once
        when empty). Python handles one connection's requests in order. Exits after N seconds.

    slow_peers.py retry --port P --rid N
        Sends REQUEST_URI `count` twice with the same request id (`rid`, N) and the at-most-once
        mark (`once`, 10,000 ms), as a netaio for Rust caller re-sending it would; reads both
        replies and prints `replies A B` (their contents).

Exits 1 with the reason on stderr when something fails.
"""

import argparse
import asyncio
import sys

from netaio import AuthFields, Body, Message, MessageType, TCPClient, TCPServer, make_respond_uri_msg

from common import quiet


def be(n: int) -> bytes:
    """A big-endian unsigned integer in as few bytes as it takes (netaio for Rust's encoding)."""
    return n.to_bytes(max(1, (n.bit_length() + 7) // 8), "big")


async def server(seconds: float | None) -> int:
    s = TCPServer(port=0, interface="127.0.0.1")

    @s.on(MessageType.REQUEST_URI)
    async def delayed(msg, writer):
        content = msg.body.content
        if content:
            await asyncio.sleep(int(content) / 1000)
        return make_respond_uri_msg(content, msg.body.uri)

    serving = asyncio.create_task(s.start())
    for _ in range(1000):
        if getattr(s, "server", None) is not None or serving.done():
            break
        await asyncio.sleep(0.01)
    if getattr(s, "server", None) is None:
        print("slow_peers.py: the server did not start", file=sys.stderr)
        return 1
    print(f"listening {s.server.sockets[0].getsockname()[1]}", flush=True)
    try:
        await asyncio.wait_for(asyncio.shield(serving), timeout=seconds)
    except asyncio.TimeoutError:
        pass
    serving.cancel()
    await s.stop()
    return 0


async def retry(port: int, rid: int) -> int:
    client = TCPClient(host="127.0.0.1", port=port)
    await client.connect()
    replies = []
    for _ in range(2):
        fields = AuthFields(fields={"rid": be(rid), "once": be(10_000)})
        msg = Message.prepare(Body.prepare(b"", uri=b"count"), MessageType.REQUEST_URI, fields)
        await client.send(msg)
        reply = await asyncio.wait_for(client.receive_once(), timeout=10)
        if reply is None or reply.header.message_type != MessageType.RESPOND_URI:
            print(f"slow_peers.py: unexpected reply {reply!r}", file=sys.stderr)
            return 1
        replies.append(reply.body.content.decode())
    await client.close()
    print("replies " + " ".join(replies), flush=True)
    return 0


async def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mode", choices=["server", "retry"])
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--port", type=int)
    p.add_argument("--rid", type=int, default=0x1234_5678_9ABC)
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args()
    quiet(args.verbose)
    if args.mode == "server":
        return await server(args.seconds)
    return await retry(args.port, args.rid)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
