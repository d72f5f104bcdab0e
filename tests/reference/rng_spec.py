#!/usr/bin/env python3
"""An independent transcription of docs/protocol.md's portable RNG, in Python (binary64 floats).

Prints the first values of the tiny preset's embedding under seed 42, which tests/test_llama.cpp pins.
"""
import math
import struct

M = (1 << 64) - 1


def mix64(z):
    z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & M
    z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M
    return z ^ (z >> 31)


def at(key, c):
    return mix64((mix64(key) + (c + 1) * 0x9e3779b97f4a7c15) & M)


def hash_bytes(b):
    h = 0xcbf29ce484222325
    for c in b:
        h = ((h ^ c) * 0x100000001b3) & M
    return mix64(h)


def derive(key, name):
    return mix64(key ^ hash_bytes(name.encode()))


def uniform(key, c):
    return ((at(key, c) >> 11) + 0.5) * 2.0 ** -53


def det_log(x):
    e, m = 0, x
    while m >= 2.0:
        m, e = m * 0.5, e + 1
    while m < 1.0:
        m, e = m * 2.0, e - 1
    if m >= 2.0 * 0.7071067811865475244:
        m, e = m * 0.5, e + 1
    s = (m - 1.0) / (m + 1.0)
    s2, acc = s * s, 0.0
    for k in range(21, 2, -2):
        acc = (acc + 1.0 / k) * s2
    return 2.0 * s * (1.0 + acc) + e * 0.6931471805599453094


def det_sincos_turns(t):
    t4 = t * 4.0
    q = int(t4)
    a = (t4 - q) * 1.5707963267948966192
    a2 = a * a
    term = 1.0
    for k in range(23, 2, -2):
        term = 1.0 - a2 / ((k - 1) * k) * term
    sn = a * term
    term = 1.0
    for k in range(22, 1, -2):
        term = 1.0 - a2 / ((k - 1) * k) * term
    return [(sn, term), (term, -sn), (-sn, -term), (-term, sn)][q & 3]


def normal(key, i):
    p = i & ~1
    r = math.sqrt(-2.0 * det_log(uniform(key, p)))
    s, c = det_sincos_turns(uniform(key, p + 1))
    return r * s if i & 1 else r * c


def derive_u64(key, n):
    return at(key, n)


def below(key, counter, n):
    """Returns (value, next counter): rejection sampling as in docs/protocol.md."""
    threshold = ((1 << 64) - n) % n
    while True:
        w = at(key, counter)
        counter += 1
        if w >= threshold:
            return w % n, counter


def pages(key, n, configs, page_rows=100):
    starts = [max(0, rows - page_rows + 1) for _, rows in configs]
    total, counter, out = sum(starts), 0, []
    for _ in range(n):
        u, counter = below(key, counter, total)
        c = 0
        while u >= starts[c]:
            u -= starts[c]
            c += 1
        out.append((configs[c][0], u))
    return out


def local_pages_key(window, uid):
    return derive_u64(derive_u64(hash_bytes(b"bistro/pages/local"), window), uid)


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


if __name__ == "__main__":
    key = derive(42, "model.embed_tokens.weight")
    for i in range(4):
        print(repr(f32(0.0 + 0.02 * normal(key, i))))
    print(pages(local_pages_key(100, 1), 3, [("a", 1000), ("b", 50), ("c", 5000), ("d", 100)]))
