#!/usr/bin/env python3
"""Python netaio 0.0.9 interop client, the twin of the Rust `compat_client`.

    compat_client.py --port P [--hmac SECRET] [--cipher KEY] [--no-encrypt-uri] --n N [--timeout S] [--no-pubsub]

Sends N REQUEST_URI messages of 0 to 1,000 bytes with `client.request` and checks each echo, then
(unless --no-pubsub) subscribe, publish (NOTIFY_URI then OK), unsubscribe, publish (OK and no
NOTIFY_URI); prints `ok N`. Other modes, instead of that:

    --expect-rejection     send one request; the server must answer AUTH_ERROR `HMAC auth failed`
                           without a MAC (read with use_auth=False); prints `rejected`
    --listen               subscribe to the topic, print `subscribed`, wait for one NOTIFY_URI,
                           print `notified CONTENT`
    --advertise ID         peer management: advertise a peer with this id, wait for the server's
                           PEER_DISCOVERED, print `peer SERVER_ID lang=LANG`, close (sends
                           DISCONNECT), print `ok peers`

Exits 1 with the reason on stderr when a check fails.
"""

import asyncio
import sys

import packify
from netaio import Body, Message, MessageType, Peer, TCPClient

from common import TOPIC, content_for, parser, plugins, quiet


class Failed(Exception):
    pass


def expect(msg, message_type, uri, content, what):
    if msg is None:
        raise Failed(f"{what}: no message (dropped by the client's checks)")
    got = (msg.header.message_type, msg.body.uri, msg.body.content)
    if got != (message_type, uri, content):
        raise Failed(f"{what}: expected {message_type.name} {uri!r} ({len(content)} bytes), got "
                     f"{msg.header.message_type.name} {msg.body.uri!r} {msg.body.content[:60]!r}")


def message(message_type, uri, content):
    return Message.prepare(Body.prepare(content, uri=uri), message_type)


async def receive(client, timeout, **kwargs):
    return await asyncio.wait_for(client.receive_once(**kwargs), timeout=timeout)


async def echo_checks(client, n, timeout):
    for i in range(n):
        uri = f"echo/{i}".encode()
        content = content_for(i)
        reply = await client.request(uri, content=content, timeout=timeout)
        expect(reply, MessageType.RESPOND_URI, uri, content, f"request {i}")


async def pubsub_checks(client, timeout):
    await client.send(message(MessageType.SUBSCRIBE_URI, TOPIC, b"sub"))
    expect(await receive(client, timeout), MessageType.CONFIRM_SUBSCRIBE, TOPIC, b"sub", "subscribe")
    content = b"hello from python"
    await client.send(message(MessageType.PUBLISH_URI, TOPIC, content))
    expect(await receive(client, timeout), MessageType.NOTIFY_URI, TOPIC, content, "notify")
    expect(await receive(client, timeout), MessageType.OK, TOPIC, b"published", "publish")
    await client.send(message(MessageType.UNSUBSCRIBE_URI, TOPIC, b"unsub"))
    expect(await receive(client, timeout), MessageType.CONFIRM_UNSUBSCRIBE, TOPIC, b"unsub",
           "unsubscribe")
    await client.send(message(MessageType.PUBLISH_URI, TOPIC, b"after"))
    # The server notifies before it answers: a notification to us would come first.
    expect(await receive(client, timeout), MessageType.OK, TOPIC, b"published",
           "publish after unsubscribing")


async def expect_rejection(client, timeout):
    await client.send(message(MessageType.REQUEST_URI, b"echo", b"let me in"))
    reply = await receive(client, timeout, use_auth=False, use_cipher=False)
    expect(reply, MessageType.AUTH_ERROR, b"ERROR", b"HMAC auth failed", "rejection")
    print("rejected", flush=True)


async def listen(client, timeout):
    await client.send(message(MessageType.SUBSCRIBE_URI, TOPIC, b"sub"))
    expect(await receive(client, timeout), MessageType.CONFIRM_SUBSCRIBE, TOPIC, b"sub", "subscribe")
    print("subscribed", flush=True)
    note = await receive(client, timeout)
    if note is None or note.header.message_type != MessageType.NOTIFY_URI:
        raise Failed(f"expected NOTIFY_URI, got {note}")
    print(f"notified {note.body.content.decode(errors='replace')}", flush=True)


async def advertise(client, peer_id, timeout):
    client.local_peer = Peer(set(), peer_id.encode(), packify.pack({"lang": b"python"}))
    await client.manage_peers_automatically()
    reply = await receive(client, timeout)
    if reply is None or reply.header.message_type != MessageType.PEER_DISCOVERED:
        raise Failed(f"expected PEER_DISCOVERED, got {reply}")
    if len(client.peers) != 1:
        raise Failed(f"expected one peer, got {client.peers}")
    (server_id, peer), = client.peers.items()
    data = packify.unpack(peer.data)
    print(f"peer {server_id.decode()} lang={data['lang'].decode()}", flush=True)


async def main() -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=0)
    p.add_argument("--no-pubsub", action="store_true")
    p.add_argument("--expect-rejection", action="store_true")
    p.add_argument("--listen", action="store_true")
    p.add_argument("--advertise", metavar="ID")
    args = p.parse_args()
    quiet(args.verbose)
    auth, cipher = plugins(args)
    client = TCPClient("127.0.0.1", args.port, auth_plugin=auth, cipher_plugin=cipher)
    await client.connect()
    try:
        if args.expect_rejection:
            await expect_rejection(client, args.timeout)
        elif args.listen:
            await listen(client, args.timeout)
        elif args.advertise:
            await advertise(client, args.advertise, args.timeout)
        else:
            await echo_checks(client, args.n, args.timeout)
            if not args.no_pubsub:
                await pubsub_checks(client, args.timeout)
    except (Failed, asyncio.TimeoutError, TimeoutError) as e:
        print(f"compat_client.py: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    finally:
        await client.close()
    if args.advertise:
        print("ok peers", flush=True)
    elif not (args.expect_rejection or args.listen):
        print(f"ok {args.n}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
