#!/usr/bin/python3
"""gen_echo_inputs.py DIR [N] [SEED] - request bodies for tests/echo_diff.sh.

Writes N (default 240) files DIR/0000.bin ... into DIR, the same bytes for
the same SEED (default 1), all valid UTF-8. The first files are fixed edge
cases (empty body, every control character, quotes and backslashes, CRLF,
NUL bytes, JSON-looking text, UTF-8 length boundaries, noncharacters, a BOM,
1 MiB bodies); the rest are random mixtures of code points from every plane,
astral ones included. The differential test posts each file to the Flask
peer and to smserve and compares the answers byte for byte.

Bodies are kept small enough that their JSON echo (at most 6 bytes out per
byte in, for control characters) stays well under the 6 MiB response limit.
"""
import os
import random
import sys

MIB = 1 << 20


def enc(s):
    return s.encode("utf-8")


def random_code_point(rng):
    """A code point from a plane chosen at random; never a surrogate, which
    UTF-8 cannot carry."""
    kind = rng.randrange(8)
    if kind == 0:
        return rng.randrange(0x00, 0x20)          # C0 controls
    if kind in (1, 2):
        return rng.choice([0x22, 0x5C, 0x2F, 0x7F]) if rng.randrange(4) == 0 \
            else rng.randrange(0x20, 0x7F)        # printable ASCII, " \ / DEL
    if kind == 3:
        return rng.randrange(0x80, 0x800)          # two-byte UTF-8
    if kind in (4, 5):
        while True:                                # three-byte UTF-8, BMP
            cp = rng.randrange(0x800, 0x10000)
            if not 0xD800 <= cp <= 0xDFFF:
                return cp
    return rng.randrange(0x10000, 0x110000)        # four-byte: planes 1-16


def random_text(rng, n):
    return "".join(chr(random_code_point(rng)) for _ in range(n))


def json_looking(rng):
    inner = random_text(rng, rng.randrange(0, 20)).replace("\\", "\\\\")
    return ('{"instances": [[1.0, 2.5, -3e7], {"k": "v\\"q"}], "note": "%s", '
            '"nested": {"a": [null, true, false]}}' % inner)


def exactly(size, unit):
    """`unit` repeated and cut to `size` bytes on a character boundary, then
    padded with ASCII so the body is exactly `size` bytes."""
    b = enc(unit) * (size // len(enc(unit)) + 1)
    b = b[:size]
    b = enc(b.decode("utf-8", "ignore"))           # drop a cut-off tail
    return b + b"x" * (size - len(b))


def fixed_cases(rng):
    controls = "".join(chr(c) for c in list(range(0x20)) + [0x7F])
    yield b""
    yield enc(controls)
    for c in list(range(0x20)) + [0x7F]:           # each control alone
        yield enc("a%sb" % chr(c))
    yield b'"'
    yield b"\\"
    yield b'\\"\\\\"\\u0041\\n/'                    # escapes as literal text
    yield b"line 1\r\nline 2\r\n\r\n"
    yield b"\n"
    yield b"\x00"
    yield b"\x00" * 1000
    yield b"nul\x00in\x00the\x00middle"
    yield enc(json_looking(rng))
    yield b'{"prediction": "a", "text": "already json"}'
    yield b"1,2,3\n4,5,6\n"
    yield b"</script><script>alert(1)</script>"
    # UTF-8 length boundaries and special code points Python keeps
    for cp in (0x7E, 0x80, 0xFF, 0x7FF, 0x800, 0xD7FF, 0xE000, 0xFEFF, 0xFFFD,
               0xFFFE, 0xFFFF, 0x10000, 0x1F600, 0xFFFFF, 0x100000, 0x10FFFF,
               0x2028, 0x2029, 0xFDD0, 0x85, 0xA0):
        yield enc(chr(cp))
    yield enc("\ufeffBOM first")
    yield enc("mixed: \u00e9\u4e2d\U0001F600\u0000\"\\\t end")
    # 1 MiB bodies: the fast paths and the chunking
    yield exactly(MIB, "a")
    yield exactly(MIB, "\U0001F600")                 # 3 MiB of escapes out
    yield exactly(MIB, "\u4e2d\u00e9x")
    yield exactly(MIB, random_text(rng, 5000))
    yield exactly(MIB - 1, "\"\\")


def random_cases(rng):
    while True:
        n = rng.choice([1, 2, 3, 10, 100, 1000, rng.randrange(1, 5000)])
        text = random_text(rng, n)
        if rng.randrange(5) == 0:
            text = json_looking(rng) + text
        if rng.randrange(7) == 0:
            text = text.replace("\n", "\r\n")
        yield enc(text)


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: gen_echo_inputs.py DIR [N] [SEED]")
    out = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 240
    rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 1)
    os.makedirs(out, exist_ok=True)
    cases = fixed_cases(rng)
    rand = random_cases(rng)
    for i in range(n):
        body = next(cases, None)
        if body is None:
            body = next(rand)
        body.decode("utf-8")                        # all must be valid
        with open(os.path.join(out, "%04d.bin" % i), "wb") as f:
            f.write(body)


if __name__ == "__main__":
    main()
