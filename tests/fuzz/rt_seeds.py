#!/usr/bin/python3
"""rt_seeds.py OUT - small valid inputs for the runtime's fuzz targets, written to
OUT/npz, OUT/csv and OUT/idx in the formats fuzz_npz.c, fuzz_csv.c and fuzz_idx.c read."""
import gzip
import io
import os
import struct
import sys
import zipfile

import numpy as np


def write(folder, name, data):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def npz_seeds(out):
    """The fuzz model's params W[2, 3], h.b[3], s: as numpy writes them, and as nnc does."""
    rng = np.random.RandomState(0)
    arrays = {"W": rng.randn(2, 3), "h.b": rng.randn(3), "s": np.float64(1.5)}
    for dtype in (np.float32, np.float64):
        typed = {k: np.asarray(v, dtype) for k, v in arrays.items()}
        for kind, save in (("savez", np.savez), ("compressed", np.savez_compressed)):
            b = io.BytesIO()
            save(b, **typed)
            write(out, f"{kind}_{np.dtype(dtype).name}.npz", b.getvalue())
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_STORED) as z:  # nnc's layout: stored, no extras
        for k, v in arrays.items():
            a = io.BytesIO()
            np.save(a, np.asarray(v, np.float32))
            z.writestr(zipfile.ZipInfo(k + ".npy", (1980, 1, 1, 0, 0, 0)), a.getvalue())
    write(out, "stored.npz", b.getvalue())


def csv_seeds(out):
    """Byte 0: options (bit 0 header, bit 1 label, bit 2 f64, bits 3-4 inputs - 1, bits 5-6
    targets, bit 7 read in pieces as --predict does); then the file."""
    def opts(header, label, f64, ins, tgts):
        return bytes([header | label << 1 | f64 << 2 | (ins - 1) << 3 | tgts << 5])
    rows = "".join(f"{i * 0.25:g},{-i:g},{i % 3}\n" for i in range(8)).encode()
    write(out, "plain", opts(0, 0, 0, 2, 1) + rows)
    write(out, "header_f64", opts(1, 0, 1, 2, 1) + b"a,b,t\n" + rows)
    write(out, "label", opts(0, 1, 0, 2, 3) + rows)
    write(out, "gzip", opts(0, 0, 0, 2, 1) + gzip.compress(rows, mtime=0))
    write(out, "crlf_bom", opts(1, 0, 0, 1, 2) + b"\xef\xbb\xbfx,y,z\r\n1e3, -2.5e-3 ,7\r\n\r\n4,5,6\r\n")
    write(out, "pieces", bytes([opts(1, 0, 0, 2, 1)[0] | 128]) + b"a,b,t\n" + rows)
    write(out, "pieces_inputs", bytes([opts(0, 0, 0, 2, 0)[0] | 128]) + rows)


def idx_bytes(arr, dims):
    return bytes([0, 0, 8, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + arr.tobytes()


def idx_seeds(out):
    """Byte 0: bits 0-1 the input (1, 4, 9, 784 values), bits 2-5 the target's elements,
    bit 6 f64, bit 7 read in pieces as --predict does; bytes 1-2 the images file's length;
    then the images and the labels."""
    def seed(name, in_code, tgt, images, labels, f64=0, pieces=0):
        write(out, name, bytes([in_code | tgt << 2 | f64 << 6 | pieces << 7]) + struct.pack("<H", len(images))
              + images + labels)
    n = 6
    labels = idx_bytes(np.arange(n, dtype=np.uint8) % 3, [n])
    seed("img2x2", 1, 3, idx_bytes(np.arange(n * 4, dtype=np.uint8), [n, 2, 2]), labels)
    seed("img3x3_f64", 2, 3, idx_bytes(np.arange(n * 9, dtype=np.uint8), [n, 3, 3]), labels, 1)
    seed("flat_gz", 1, 1, gzip.compress(idx_bytes(np.arange(n * 4, dtype=np.uint8), [n, 4]), mtime=0),
         idx_bytes(np.arange(n, dtype=np.uint8) % 2, [n]))
    seed("mnist_like", 3, 10, idx_bytes(np.zeros((2, 28, 28), np.uint8), [2, 28, 28]),
         idx_bytes(np.array([7, 2], np.uint8), [2]))
    seed("pieces_gz", 1, 2, gzip.compress(idx_bytes(np.arange(n * 4, dtype=np.uint8), [n, 2, 2]), mtime=0),
         b"", pieces=1)
    seed("pieces_labels", 2, 3, idx_bytes(np.arange(n * 9, dtype=np.uint8), [n, 3, 3]), labels, 1, pieces=1)


def main():
    out = sys.argv[1]
    npz_seeds(os.path.join(out, "npz"))
    csv_seeds(os.path.join(out, "csv"))
    idx_seeds(os.path.join(out, "idx"))


if __name__ == "__main__":
    main()
