"""What the Python interop programs share: flags, plugins and request contents.

Mirrors `netaio_examples::compat` on the Rust side, so both languages send the same requests.
"""

import argparse
import logging

from netaio import HMACAuthPlugin, Sha256StreamCipherPlugin

TOPIC = b"compat/topic"


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--hmac", metavar="SECRET")
    p.add_argument("--cipher", metavar="KEY")
    p.add_argument("--no-encrypt-uri", action="store_true")
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("--verbose", action="store_true")
    return p


def quiet(verbose: bool) -> None:
    """The library logs every connection at INFO on stderr; keep warnings only."""
    if not verbose:
        for name in ("netaio.server", "netaio.client", "netaio.node"):
            logging.getLogger(name).setLevel(logging.WARNING)


def plugins(args):
    auth = HMACAuthPlugin({"secret": args.hmac}) if args.hmac else None
    cipher = (
        Sha256StreamCipherPlugin({"key": args.cipher, "encrypt_uri": not args.no_encrypt_uri})
        if args.cipher
        else None
    )
    return auth, cipher


def content_for(i: int) -> bytes:
    """The i-th echo request's content: 0 to 1,000 bytes (as `content_for` in Rust)."""
    if i == 0:
        n = 0
    elif i == 1:
        n = 1000
    else:
        n = (i * 379) % 1001
    return bytes((i * 7 + j) % 256 for j in range(n))
