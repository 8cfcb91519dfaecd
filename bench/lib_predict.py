#!/usr/bin/python3
"""nnc's forward pass alone for the benchmark's predict row (bench/run.py): the Fashion-MNIST
MLP as a shared library (nnc --emit=shared examples/fashion_mlp.nn), its weights loaded from
an .npz, fashion_mlp_predict over all the images at once from Python with ctypes: the same
generated evaluate() as `./fashion_mlp --predict`, timed like bench/torch_predict.py times
PyTorch (the images already in memory). Prints
    seconds S  samples N
S the median of --reps calls."""
import argparse
import ctypes
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_peer import read_idx  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lib", required=True)
    ap.add_argument("--images", required=True)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    x = read_idx(a.images, 0)
    x = np.ascontiguousarray(x.reshape(len(x), -1).astype(np.float32) / np.float32(255))
    y = np.zeros((len(x), 10), np.float32)
    lib = ctypes.CDLL(os.path.abspath(a.lib))
    lib.fashion_mlp_new.restype = ctypes.c_void_p
    lib.fashion_mlp_new.argtypes = [ctypes.c_ulonglong]
    lib.fashion_mlp_load.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    lib.fashion_mlp_error.restype = ctypes.c_char_p
    lib.fashion_mlp_predict.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
    m = lib.fashion_mlp_new(1)
    if not m or lib.fashion_mlp_load(m, a.weights.encode()) != 0:
        sys.exit(f"lib_predict: {lib.fashion_mlp_error().decode()}")
    lib.fashion_mlp_predict(m, 64, x.ctypes.data, y.ctypes.data)  # warm-up: threads, workspace
    times = []
    for _ in range(a.reps):
        t0 = time.perf_counter()
        lib.fashion_mlp_predict(m, len(x), x.ctypes.data, y.ctypes.data)
        times.append(time.perf_counter() - t0)
    print(f"seconds {statistics.median(times):.6f}  samples {len(x)}", flush=True)


if __name__ == "__main__":
    main()
