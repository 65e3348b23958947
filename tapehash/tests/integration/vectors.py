"""Answers the Rust tests of netaio-tapehash with the Python package tapehash 0.1.1.

Reads one JSON object on stdin:
  {"hashes": [[algo, preimage_hex, code_size, tape_size_multiplier], ...],
   "digests": [digest_hex, ...], "difficulties": [decimal text, ...],
   "work": [[preimage_hex, start_nonce, difficulty as decimal text], ...]}
and prints one JSON object:
  {"hashes": [digest_hex, ...],
   "difficulty": [str(calculate_difficulty(d)), ...],
   "check": [[check_difficulty(d, x) for x in difficulties], ...],
   "target": [hex(calculate_target(x)) (64 digits), ...],
   "work": [nonce, ...]}
"""
import json
import sys

import tapehash
from tapehash import (
    calculate_difficulty, calculate_target, check_difficulty, tapehash1, tapehash2, tapehash3,
    work,
)

assert tapehash.version() == '0.1.1', tapehash.version()

req = json.load(sys.stdin)
difficulties = [int(x) for x in req['difficulties']]


def run(algo, preimage, code_size, tsm):
    if algo == 1:
        return tapehash1(preimage, code_size)
    if algo == 2:
        return tapehash2(preimage, tsm)
    return tapehash3(preimage, code_size, tsm)


class State:
    def __init__(self, prefix, nonce):
        self.prefix = prefix
        self.nonce = nonce


def serialize(s):
    return s.prefix + s.nonce.to_bytes(4, 'big')


out = {
    'hashes': [run(a, bytes.fromhex(p), c, t).hex() for a, p, c, t in req['hashes']],
    'difficulty': [str(calculate_difficulty(bytes.fromhex(d))) for d in req['digests']],
    'check': [
        [check_difficulty(bytes.fromhex(d), x) for x in difficulties]
        for d in req['digests']
    ],
    'target': ['%064x' % calculate_target(x) for x in difficulties],
    'work': [
        work(State(bytes.fromhex(p), n), serialize, int(d), lambda b: tapehash1(b, 20)).nonce
        for p, n, d in req['work']
    ],
}
json.dump(out, sys.stdout)
