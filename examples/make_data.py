#!/usr/bin/env python3
"""Writes the small data sets of the examples, deterministically (plain Python, no numpy).

    python3 examples/make_data.py        rewrites examples/data/*.csv

The files are committed; tests/py/test_examples.py checks this script reproduces them.
"""
import math
import os
import random

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


def write(name, header, rows):
    with open(os.path.join(HERE, name), "w") as f:
        if header:
            f.write(header + "\n")
        for row in rows:
            f.write(",".join(row) + "\n")


def curve(n, seed):
    """y = sin(2x) * 0.8 + noise, for x in [-2, 2]: a regression a tanh net can fit."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        x = rng.uniform(-2, 2)
        y = 0.8 * math.sin(2 * x) + rng.gauss(0, 0.05)
        rows.append([f"{x:.6f}", f"{y:.6f}"])
    return rows


def spirals(n_per_class, seed, noise=0.15):
    """Two interleaved spirals, class 0 and class 1: not separable by any line."""
    rng = random.Random(seed)
    rows = []
    for i in range(n_per_class):
        r = 0.25 + 2.75 * i / n_per_class
        a = 1.75 * math.pi * i / n_per_class
        for cls, phase in ((0, 0.0), (1, math.pi)):
            x = r * math.cos(a + phase) + rng.gauss(0, noise)
            y = r * math.sin(a + phase) + rng.gauss(0, noise)
            rows.append([f"{x:.6f}", f"{y:.6f}", str(cls)])
    rng.shuffle(rows)
    return rows


def main():
    os.makedirs(HERE, exist_ok=True)
    write("curve_train.csv", "x,y", curve(256, 1))
    write("curve_test.csv", "x,y", curve(128, 2))
    write("spirals_train.csv", "x,y,class", spirals(200, 3))
    write("spirals_test.csv", "x,y,class", spirals(100, 4))


if __name__ == "__main__":
    main()
