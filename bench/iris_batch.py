#!/usr/bin/python3
"""bench/iris_batch.py FILE - writes the benchmarks' ~1 MB CSV batch: iris-like
records of 4 features with one decimal each, the same bytes on every run."""
import random
import sys

random.seed(1)
with open(sys.argv[1], "w") as f:
    while f.tell() < 1_000_000:
        f.write("%.1f,%.1f,%.1f,%.1f\n" % (random.uniform(4, 8), random.uniform(2, 4.5),
                                          random.uniform(1, 7), random.uniform(0.1, 2.5)))
