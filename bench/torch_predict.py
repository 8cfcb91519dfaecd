#!/usr/bin/python3
"""The PyTorch peer of the benchmark's predict row (bench/run.py): the Fashion-MNIST MLP of
examples/fashion_mlp.nn (784-256-128-10, relu, softmax) with the weights of an nnc .npz, the
forward pass over a set of images under torch.no_grad(), as a PyTorch user predicts. For
each thread count T of --threads (torch's threads and its OpenBLAS's, as torch_peer.py sets
them) it prints
    threads T  seconds S  samples N
where S is the median of --reps forward passes over all N images at once (reading the
images and the weights is outside it); then, at the last thread count,
    whole threads T  seconds S  samples N
where S is the median of --reps runs of what `./MODEL --predict IMAGES --out FILE` does:
read the gzipped images, the forward pass, the csv (a class column, then the outputs, %.9g)
written to /dev/null; starting Python and importing torch (about a second) are outside it.
Run with /usr/bin/python3 (Debian's torch)."""
import argparse
import os
import statistics
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_peer import blas_thread_setter, read_idx  # noqa: E402


def model_from(npz):
    w = np.load(npz)
    layers = []
    for name, act in (("h1", torch.nn.ReLU()), ("h2", torch.nn.ReLU()), ("z", torch.nn.Softmax(dim=1))):
        weight = torch.from_numpy(w[f"{name}.W"].astype(np.float32))
        lin = torch.nn.Linear(weight.shape[1], weight.shape[0])
        with torch.no_grad():
            lin.weight.copy_(weight)
            lin.bias.copy_(torch.from_numpy(w[f"{name}.b"].astype(np.float32)))
        layers += [lin, act]
    return torch.nn.Sequential(*layers).eval()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", required=True)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--threads", default="1")
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    x = read_idx(a.images, 0)
    x = torch.from_numpy(x.reshape(len(x), -1).astype(np.float32) / np.float32(255))
    model = model_from(a.weights)
    torch.zeros(2, 2) @ torch.zeros(2, 2)  # loads the BLAS library
    set_blas_threads = blas_thread_setter()
    for t in [int(s) for s in a.threads.split(",")]:
        torch.set_num_threads(t)
        if set_blas_threads:
            set_blas_threads(t)
        times = []
        with torch.no_grad():
            model(x[:64])  # warm-up
            for _ in range(a.reps):
                t0 = time.perf_counter()
                model(x)
                times.append(time.perf_counter() - t0)
        print(f"threads {t}  seconds {statistics.median(times):.6f}  samples {len(x)}", flush=True)
    times = []
    for _ in range(a.reps):
        t0 = time.perf_counter()
        predict_csv(model, a.images, os.devnull)
        times.append(time.perf_counter() - t0)
    print(f"whole threads {t}  seconds {statistics.median(times):.6f}  samples {len(x)}", flush=True)


def predict_csv(model, images, out):
    """The whole of a prediction as a PyTorch user writes it: images in, csv out."""
    x = read_idx(images, 0)
    x = torch.from_numpy(x.reshape(len(x), -1).astype(np.float32) / np.float32(255))
    with torch.no_grad():
        y = model(x).numpy()
    table = np.hstack([y.argmax(axis=1)[:, None].astype(np.float64), y.astype(np.float64)])
    header = "class," + ",".join(f"y{k}" for k in range(y.shape[1]))
    np.savetxt(out, table, fmt=["%d"] + ["%.9g"] * y.shape[1], delimiter=",", header=header, comments="")


if __name__ == "__main__":
    main()
