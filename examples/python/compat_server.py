#!/usr/bin/env python3
"""Python netaio 0.0.9 interop server, the twin of the Rust `compat_server`.

    compat_server.py --port P [--hmac SECRET] [--cipher KEY] [--no-encrypt-uri] [--seconds N] [--bind ADDR] [--readme-handlers]

Prints `listening P` once bound (the real port when P is 0). REQUEST_URI -> RESPOND_URI echo;
SUBSCRIBE_URI -> CONFIRM_SUBSCRIBE; UNSUBSCRIBE_URI -> CONFIRM_UNSUBSCRIBE (also when not
subscribed); PUBLISH_URI -> NOTIFY_URI to the uri's subscribers, then OK `published`; anything else
gets the library's default NOT_FOUND. Exits after N seconds.

The confirmations echo the request's content, unless `--readme-handlers`: then the subscribe and
unsubscribe handlers are the Python README's, word for word (empty content; unsubscribing when not
subscribed raises KeyError).
"""

import asyncio
import sys

from netaio import Body, Message, MessageType, TCPServer, make_ok_msg, make_respond_uri_msg

from common import parser, plugins, quiet


async def main() -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float)
    p.add_argument("--bind", default="0.0.0.0")
    p.add_argument("--readme-handlers", action="store_true")
    args = p.parse_args()
    quiet(args.verbose)
    auth, cipher = plugins(args)
    server = TCPServer(port=args.port, interface=args.bind, auth_plugin=auth, cipher_plugin=cipher)

    def reply(msg, message_type):
        return Message.prepare(Body.prepare(msg.body.content, uri=msg.body.uri), message_type)

    @server.on(MessageType.REQUEST_URI)
    def echo(msg, writer):
        return make_respond_uri_msg(msg.body.content, msg.body.uri)

    if args.readme_handlers:
        # From the Python library's README.
        @server.on(MessageType.SUBSCRIBE_URI)
        async def subscribe(msg: Message, writer: asyncio.StreamWriter):
            server.subscribe(msg.body.uri, writer)
            return Message.prepare(
                Body.prepare(b'', uri=msg.body.uri),
                MessageType.CONFIRM_SUBSCRIBE
            )

        @server.on(MessageType.UNSUBSCRIBE_URI)
        async def unsubscribe(msg: Message, writer: asyncio.StreamWriter):
            server.unsubscribe(msg.body.uri, writer)
            return Message.prepare(
                Body.prepare(b'', uri=msg.body.uri),
                MessageType.CONFIRM_UNSUBSCRIBE
            )
    else:
        @server.on(MessageType.SUBSCRIBE_URI)
        def subscribe(msg, writer):
            server.subscribe(msg.body.uri, writer)
            return reply(msg, MessageType.CONFIRM_SUBSCRIBE)

        @server.on(MessageType.UNSUBSCRIBE_URI)
        def unsubscribe(msg, writer):
            try:
                server.unsubscribe(msg.body.uri, writer)
            except KeyError:
                pass
            return reply(msg, MessageType.CONFIRM_UNSUBSCRIBE)

    @server.on(MessageType.PUBLISH_URI)
    async def publish(msg, writer):
        await server.notify(msg.body.uri, reply(msg, MessageType.NOTIFY_URI))
        return make_ok_msg(b"published", msg.body.uri)

    serving = asyncio.create_task(server.start())
    for _ in range(1000):
        if getattr(server, "server", None) is not None or serving.done():
            break
        await asyncio.sleep(0.01)
    if getattr(server, "server", None) is None:
        print("compat_server.py: the server did not start", file=sys.stderr)
        if serving.done():
            serving.result()
        return 1
    port = server.server.sockets[0].getsockname()[1]
    print(f"listening {port}", flush=True)
    try:
        if args.seconds is not None:
            await asyncio.wait_for(asyncio.shield(serving), timeout=args.seconds)
        else:
            await serving
    except asyncio.TimeoutError:
        pass
    serving.cancel()
    await server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
