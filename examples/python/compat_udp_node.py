#!/usr/bin/env python3
"""Python netaio 0.0.9 UDP interop node, the twin of the Rust `compat_udp_node`.

    compat_udp_node.py --port P [--peer-port Q --send N] [--hmac SECRET] [--cipher KEY] [--no-encrypt-uri] [--seconds S] [--timeout T]

Binds 127.0.0.1:P, prints `listening P`, answers REQUEST_URI with OK (same uri and content) until
S seconds pass. With --send N it sends N requests to 127.0.0.1:Q instead, checks each OK reply
(waiting up to T seconds), prints `ok N` and exits 0, or exits 1 with the reason on stderr.

`ignore_own_ip=False`: the library's default drops every datagram from this host's primary address,
which is 127.0.0.1 on a host without a route. The requests are sent with `send` and an ephemeral
handler on (OK, uri, peer), because the library's `request()` waits for RESPOND_URI only.
"""

import asyncio
import sys

from netaio import Body, Message, MessageType, UDPNode, make_ok_msg

from common import content_for, parser, plugins, quiet


async def send_checks(node, peer, n, timeout):
    for i in range(n):
        uri = f"echo/{i}".encode()
        content = content_for(i)
        got = []
        done = asyncio.Event()

        def on_reply(msg, addr):
            got.append(msg)
            done.set()

        node.add_ephemeral_handler((MessageType.OK, uri, peer), on_reply)
        node.send(Message.prepare(Body.prepare(content, uri=uri), MessageType.REQUEST_URI), peer)
        try:
            await asyncio.wait_for(done.wait(), timeout=timeout)
        except asyncio.TimeoutError:
            node.remove_ephemeral_handler((MessageType.OK, uri, peer))
            raise RuntimeError(f"request {i}: no OK reply within {timeout}s")
        reply = got[0]
        if (reply.body.uri, reply.body.content) != (uri, content):
            raise RuntimeError(f"request {i}: wrong reply {reply.body.uri!r} {reply.body.content[:40]!r}")


async def main() -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--peer-port", type=int)
    p.add_argument("--send", type=int)
    p.add_argument("--seconds", type=float)
    args = p.parse_args()
    quiet(args.verbose)
    auth, cipher = plugins(args)
    node = UDPNode(port=args.port, interface="127.0.0.1", auth_plugin=auth,
                   cipher_plugin=cipher, ignore_own_ip=False)

    @node.on(MessageType.REQUEST_URI)
    def echo(msg, addr):
        return make_ok_msg(msg.body.content, msg.body.uri)

    await node.start()
    port = node.transport.get_extra_info("sockname")[1]
    print(f"listening {port}", flush=True)
    code = 0
    if args.send is not None:
        try:
            await send_checks(node, ("127.0.0.1", args.peer_port), args.send, args.timeout)
            print(f"ok {args.send}", flush=True)
        except RuntimeError as e:
            print(f"compat_udp_node.py: {e}", file=sys.stderr)
            code = 1
    elif args.seconds is not None:
        await asyncio.sleep(args.seconds)
    else:
        await asyncio.Event().wait()
    await node.stop()
    return code


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
