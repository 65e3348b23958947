#!/usr/bin/env python3
"""Python netaio 0.0.9 UDP node with automatic peer management, for the peer-management interop tests.

    compat_udp_peers.py --port P --id ID [--data-key K --data-value V] [--advertise-to Q] [--seconds S] [--hmac SECRET] [--cipher KEY]

Binds 127.0.0.1:P, prints `listening P`, starts `manage_peers_automatically(advertise_every=1,
peer_timeout=30)` with app id `netaio` and a local peer of id ID (its data
`packify.pack({K: V})`, or that of an empty dict), and prints `peer ID K=V ...` when a peer is
added to the node's peer list and `peer-gone ID` when it is removed, until S seconds pass.

The library advertises to its multicast group on its own port, which a second node cannot bind
on the same host: `--advertise-to Q` also sends the advert the library's loop builds, the same
message, by unicast to 127.0.0.1:Q every second (so the Rust node on Q receives a Python advert).
`ignore_own_ip=False`, as in compat_udp_node.py.
"""

import asyncio
import sys

import packify
from netaio import Peer, MessageType, UDPNode

from common import parser, plugins, quiet


def describe(peer) -> str:
    try:
        data = packify.unpack(peer.data) if peer.data else {}
        items = " ".join(
            f"{k}={v.decode() if isinstance(v, bytes) else v}" for k, v in sorted(data.items())
        )
    except Exception as e:  # not packify: show it raw
        items = f"data={peer.data!r} ({e})"
    return f"{peer.id.decode(errors='replace')} {items}".rstrip()


async def main() -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--id", required=True)
    p.add_argument("--data-key")
    p.add_argument("--data-value")
    p.add_argument("--advertise-to", type=int)
    p.add_argument("--seconds", type=float, default=30.0)
    args = p.parse_args()
    quiet(args.verbose)
    auth, cipher = plugins(args)
    data = {args.data_key: args.data_value.encode()} if args.data_key else {}
    node = UDPNode(port=args.port, interface="127.0.0.1", auth_plugin=auth,
                   cipher_plugin=cipher, ignore_own_ip=False,
                   local_peer=Peer(addrs=set(), id=args.id.encode(), data=packify.pack(data)))
    await node.start()
    port = node.transport.get_extra_info("sockname")[1]
    node.port = port
    node.local_peer.addrs = {("127.0.0.1", port)}
    print(f"listening {port}", flush=True)
    await node.manage_peers_automatically(advertise_every=1, peer_timeout=30)

    def advert():
        # What `_advertise_peer_loop` sends to the group.
        return node.message_class.prepare(
            node.body_class.prepare(node.peer_plugin.pack(node.local_peer), b"netaio"),
            MessageType.ADVERTISE_PEER,
        )

    known = {}
    loop = asyncio.get_running_loop()
    end = loop.time() + args.seconds
    next_advert = loop.time()
    while loop.time() < end:
        if args.advertise_to is not None and loop.time() >= next_advert:
            node.send(advert(), ("127.0.0.1", args.advertise_to))
            next_advert = loop.time() + 1.0
        now = {pid: describe(peer) for pid, peer in node.peers.items()}
        for pid, text in now.items():
            if known.get(pid) != text:
                print(f"peer {text}", flush=True)
        for pid in known:
            if pid not in now:
                print(f"peer-gone {pid.decode(errors='replace')}", flush=True)
        known = now
        await asyncio.sleep(0.05)
    await node.stop_peer_management()
    await node.stop()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
