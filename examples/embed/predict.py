#!/usr/bin/python3
"""predict.py - the xor model's shared library from Python with ctypes (no other module):
load the weights train_xor saved, predict four samples.

    nnc --emit=shared ../xor.nn       # libxor.so and xor.h
    python3 predict.py [libxor.so [xor.npz]]
"""
import ctypes
import os
import sys

lib_path = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "libxor.so")
npz = sys.argv[2] if len(sys.argv) > 2 else "xor.npz"

lib = ctypes.CDLL(lib_path)
model = ctypes.c_void_p
floats = ctypes.POINTER(ctypes.c_float)
lib.xor_new.restype = model
lib.xor_new.argtypes = [ctypes.c_ulonglong]
lib.xor_free.argtypes = [model]
lib.xor_load.argtypes = [model, ctypes.c_char_p]
lib.xor_error.restype = ctypes.c_char_p
lib.xor_predict.argtypes = [model, ctypes.c_int, floats, floats]

m = lib.xor_new(1)
if not m or lib.xor_load(m, npz.encode()) != 0:
    sys.exit(f"predict.py: {lib.xor_error().decode()}")
samples = [(0, 0), (0, 1), (1, 0), (1, 1)]
x = (ctypes.c_float * 8)(*[v for s in samples for v in s])  # row-major: n x xor_INPUT_SIZE
y = (ctypes.c_float * 4)()                                   # n x xor_OUTPUT_SIZE
lib.xor_predict(m, len(samples), x, y)
lib.xor_free(m)
for (a, b), v in zip(samples, y):
    print(f"{a} xor {b} = {v:.4f}")
