#!/usr/bin/python3
"""tools/make_numtext_corpus.py - the data lib/numtext.h is checked with, and
its table, from Python's own integers and repr.

  /usr/bin/python3 tools/make_numtext_corpus.py corpus [FILE]
      writes tests/vectors/numtext_repr.txt (or FILE): one double a line,
      "BITS REPR", BITS its 16 hex digits, REPR Python's repr of it. The
      same lines on every run (a fixed seed).
  /usr/bin/python3 tools/make_numtext_corpus.py stream N SEED
      writes N such lines of random doubles to stdout (tests/numtext.sh
      feeds them to tests/numtext_check.c when python3 is at hand).
  /usr/bin/python3 tools/make_numtext_corpus.py table
      prints the C table SMLIB_POW10_128 of lib/numtext.h: for e from -292 to
      326, 10^e = G * 2^(floor(e log2 10) - 127) with G in [2^127, 2^128)
      rounded up (exact where 10^e is), as two 64-bit halves. It also
      checks the integer formulas lib/numtext.h uses for floor(log10 2^q),
      floor(log10 (3/4) 2^q) and floor(log2 10^e) over every exponent a
      double can have.
"""
import math
import random
import struct
import sys
from fractions import Fraction

E_MIN, E_MAX = -292, 326   # the powers of ten the table holds


def bits_of(x):
    return struct.unpack("<Q", struct.pack("<d", x))[0]


def double_of(b):
    return struct.unpack("<d", struct.pack("<Q", b))[0]


def floor_log(x, base):
    """floor(log_base x) for a positive Fraction x, exactly."""
    k = math.floor((math.log(x.numerator) - math.log(x.denominator)) / math.log(base))
    while Fraction(base) ** k > x:
        k -= 1
    while Fraction(base) ** (k + 1) <= x:
        k += 1
    return k


def check_formulas():
    """The shifts lib/numtext.h uses, against exact logarithms."""
    for q in range(-1100, 1000):
        x = Fraction(2) ** q
        assert (q * 661971961083) >> 41 == floor_log(x, 10), q
        assert (q * 661971961083 - 274743187321) >> 41 == floor_log(x * Fraction(3, 4), 10), q
    for e in range(-400, 400):
        assert (e * 913124641741) >> 38 == floor_log(Fraction(10) ** e, 2), e


def table():
    check_formulas()
    print("static SMLIB_UNUSED const uint64_t SMLIB_POW10_128[%d][2] = {" % (E_MAX - E_MIN + 1))
    for e in range(E_MIN, E_MAX + 1):
        p = Fraction(10) ** e
        shift = floor_log(p, 2) - 127          # 10^e = G * 2^shift
        g = p / Fraction(2) ** shift
        top = math.ceil(g)
        assert 2 ** 127 <= g < 2 ** 128 and top < 2 ** 128
        print("\t{0x%016x, 0x%016x}, /* 10^%d */" % (top >> 64, top & (2 ** 64 - 1), e))
    print("};")


def edge_doubles():
    """Values where a formatter goes wrong: the ends of the range, every
    power of two, subnormals, integers, decimal halfway cases, short
    decimals, float32s widened (what the XGBoost plug-in prints)."""
    out = [0x0000000000000001, 0x0000000000000002, 0x0000000000000003, 0x000fffffffffffff,
           0x0010000000000000, 0x0010000000000001, 0x7fefffffffffffff, 0x7feffffffffffffe,
           0x3ff0000000000000, 0x3fefffffffffffff, 0x3ff0000000000001]
    out += [bits_of(2.0 ** e) for e in range(-1074, 1024)]
    out += [bits_of(2.0 ** e) - 1 for e in range(-1021, 1024, 7)]
    out += [bits_of(2.0 ** e) + 1 for e in range(-1021, 1024, 7)]
    out += [bits_of(float(10 ** e)) for e in range(0, 309)]
    out += [bits_of(float("1e%d" % e)) for e in range(-323, 0)]
    out += list(range(1, 300, 7)) + [0x000fffffffffffff - i for i in range(0, 300, 7)]
    for n in [1, 2, 3, 7, 9, 10, 99, 100, 123456789, 2 ** 53 - 1, 2 ** 53, 2 ** 53 + 2, 2 ** 63, 2 ** 64]:
        out.append(bits_of(float(n)))
    # x.25 and x.75 with spacing 0.25: two 17-digit candidates tie.
    for base in [2 ** 50, 2 ** 50 + 12345, 2 ** 51 - 4]:
        for f in [0.25, 0.75, 0.5]:
            out.append(bits_of(base + f))
    for text in ["0.1", "0.2", "0.3", "1.1", "2.5", "1e-05", "0.0001", "9.999999999999999e+15",
                 "1e+16", "123456789012345680", "5e-324", "1.7976931348623157e+308",
                 "2.2250738585072014e-308", "2.225073858507201e-308", "9007199254740993",
                 "0.30000000000000004", "1e23", "8.41e21", "5.0e-310", "4.35e-299"]:
        out.append(bits_of(float(text)))
    r = random.Random(20)
    for _ in range(600):
        f = struct.unpack("<f", struct.pack("<I", r.getrandbits(32) & 0x7f7fffff))[0]
        out.append(bits_of(f))
    for _ in range(300):                        # probabilities, float32 and double
        p = r.random()
        out.append(bits_of(p))
        out.append(bits_of(struct.unpack("<f", struct.pack("<f", p))[0]))
    return out


def random_doubles(n, seed):
    r = random.Random(seed)
    out = []
    while len(out) < n:
        b = r.getrandbits(64) & 0x7fffffffffffffff
        if b < 0x7ff0000000000000:                # finite
            out.append(b)
    return out


def line(b):
    return "%016x %s\n" % (b, repr(double_of(b)))


def main():
    what = sys.argv[1] if len(sys.argv) > 1 else "corpus"
    if what == "table":
        table()
    elif what == "stream":
        n, seed = int(sys.argv[2]), int(sys.argv[3])
        sys.stdout.writelines(line(b) for b in random_doubles(n, seed))
    elif what == "corpus":
        path = sys.argv[2] if len(sys.argv) > 2 else "tests/vectors/numtext_repr.txt"
        edges = edge_doubles()
        values = edges + [b | 1 << 63 for b in edges[:200]] + random_doubles(2000, 1)
        seen, lines = set(), []
        for b in values:
            if b not in seen:
                seen.add(b)
                lines.append(line(b))
        with open(path, "w") as f:
            f.writelines(lines)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
