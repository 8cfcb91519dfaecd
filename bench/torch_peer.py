#!/usr/bin/python3
"""The PyTorch peer of nnc's benchmark (bench/run.py): the same multilayer perceptron,
initialisation, loss and plain-SGD minibatch loop as the nnc models in bench/, written the
way a PyTorch user would (nn.Linear, F.cross_entropy on logits, optim.SGD).

For each thread count T of --threads, in the order given, it trains a fresh model (same
seed) for --epochs with T threads for torch's own kernels (torch.set_num_threads) AND for the
OpenBLAS that Debian's torch calls for its matrix products (openblas_set_num_threads). Left
alone, OpenBLAS keeps a pool of one thread per core beside torch's OpenMP threads, and with
T = 2 the two pools oversubscribe the two cores: the epoch ran 5 to 30 times slower. It prints,
per epoch and per thread count,
    threads T  epoch N  loss X  acc Y%  seconds S
    threads T  test: loss X acc Y%
where S times the epoch's loop only (shuffle, batches, forward, backward, step); loading
the data and importing torch are outside it. Run with /usr/bin/python3 (Debian's torch).
"""
import argparse
import ctypes
import gzip
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F


def read_idx(path, limit):
    """The u8 array of an IDX file (gzipped or not), at most limit items (0: all)."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    ndims = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndims)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndims).reshape(dims)
    return data[:limit] if limit else data


def load_set(spec, limit=0):
    images, labels = spec.split(",", 1)
    x = read_idx(images, limit)
    x = torch.from_numpy(x.reshape(len(x), -1).astype(np.float32) / np.float32(255))
    y = torch.from_numpy(read_idx(labels, limit).astype(np.int64))
    return x, y


def blas_thread_setter():
    """openblas_set_num_threads of the BLAS library torch loaded, or None."""
    with open("/proc/self/maps") as f:
        paths = {line.split()[-1] for line in f if "blas" in line and "/" in line}
    for path in sorted(paths):
        lib = ctypes.CDLL(path)
        if hasattr(lib, "openblas_set_num_threads"):
            return lib.openblas_set_num_threads
    return None


def make_model(sizes):
    """relu hidden layers with he-normal weights, a last layer with xavier-uniform weights,
    zero biases: what nnc's dense() gives these models."""
    layers = []
    for i in range(len(sizes) - 1):
        lin = torch.nn.Linear(sizes[i], sizes[i + 1])
        last = i == len(sizes) - 2
        with torch.no_grad():
            if last:
                torch.nn.init.xavier_uniform_(lin.weight)
            else:
                lin.weight.normal_(0.0, (2.0 / sizes[i]) ** 0.5)
            lin.bias.zero_()
        layers.append(lin)
        if not last:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def train_epoch(model, opt, x, y, batch):
    t0 = time.perf_counter()
    perm = torch.randperm(len(x))
    loss_sum, correct = 0.0, 0
    for start in range(0, len(x), batch):
        idx = perm[start:start + batch]
        xb, yb = x[idx], y[idx]
        z = model(xb)
        loss = F.cross_entropy(z, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss_sum += loss.detach() * len(idx)
        correct += (z.detach().argmax(1) == yb).sum()
    loss_sum, correct = float(loss_sum), int(correct)  # the last batch has finished
    return time.perf_counter() - t0, loss_sum / len(x), 100.0 * correct / len(x)


@torch.no_grad()
def evaluate(model, x, y):
    z = model(x)
    loss = float(F.cross_entropy(z, y))
    return loss, 100.0 * int((z.argmax(1) == y).sum()) / len(x)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train", required=True, help="IMAGES,LABELS")
    ap.add_argument("--test", help="IMAGES,LABELS")
    ap.add_argument("--limit", type=int, default=0, help="use the first N training samples")
    ap.add_argument("--layers", default="784,128,10")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", default="1", help="comma-separated thread counts to try")
    a = ap.parse_args()
    sizes = [int(s) for s in a.layers.split(",")]
    x, y = load_set(a.train, a.limit)
    test = load_set(a.test) if a.test else None
    torch.zeros(2, 2) @ torch.zeros(2, 2)  # loads the BLAS library
    set_blas_threads = blas_thread_setter()
    if set_blas_threads is None:
        print("note: no OpenBLAS found in torch's process; its BLAS threads left alone",
              file=sys.stderr)
    for threads in [int(t) for t in a.threads.split(",")]:
        torch.set_num_threads(threads)
        if set_blas_threads is not None:
            set_blas_threads(threads)
        torch.manual_seed(a.seed)
        model = make_model(sizes)
        opt = torch.optim.SGD(model.parameters(), lr=a.lr)
        for e in range(a.epochs):
            seconds, loss, acc = train_epoch(model, opt, x, y, a.batch)
            print(f"threads {threads}  epoch {e + 1}  loss {loss:.6f}  acc {acc:.2f}%  "
                  f"seconds {seconds:.6f}", flush=True)
        if test is not None:
            loss, acc = evaluate(model, *test)
            print(f"threads {threads}  test: loss {loss:.6f} acc {acc:.2f}%", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
