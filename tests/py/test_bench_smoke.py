"""test_bench_smoke.py - keeps the benchmark harness of bench/ from rotting, without timing
anything: the C reference trainer (bench/ref_trainer.c) is built in plain-loop mode and
trained on a small synthetic IDX data set; it must learn (loss falls, accuracy far above
chance), be deterministic for a seed, fail cleanly on bad input, and print what
bench/run.py parses. The nnc under test (--nnc) compiles the three workloads
(bench/mlp_*.nn) the way bench/run.py does, and each trains one epoch on the synthetic set
through the harness's own run_nnc, which parses its epoch and test lines. Where OpenBLAS or
PyTorch is installed, the BLAS back end must follow the same maths and the PyTorch peer
must learn too; otherwise those parts are skipped.
Run: /usr/bin/python3 test_bench_smoke.py --nnc NNC --build BUILD"""
import argparse
import gzip
import importlib.util
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH = os.path.join(ROOT, "bench")
FAILS = []
CFLAGS = ["-std=c11", "-D_POSIX_C_SOURCE=200809L", "-O2", "-fopenmp-simd", "-Wall", "-Wextra",
          "-Werror"]


def check(cond, what):
    if not cond:
        FAILS.append(what)
        print("FAIL:", what)


def load_harness():
    spec = importlib.util.spec_from_file_location("bench_run", os.path.join(BENCH, "run.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def write_idx(path, array, compress):
    head = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    with (gzip.open if compress else open)(path, "wb") as f:
        f.write(head + array.astype(np.uint8).tobytes())


def synthetic(n, seed):
    """Images of 28x28 noise where class k lights up rows 2k..2k+3: learnable, not trivial."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    images = rng.integers(0, 120, (n, 28, 28))
    for i, k in enumerate(labels):
        images[i, 2 * k:2 * k + 4, 4:24] += 120
    return images, labels


def make_set(folder, name, n, seed):
    images, labels = synthetic(n, seed)
    ipath = os.path.join(folder, f"{name}-images-idx3-ubyte.gz")
    lpath = os.path.join(folder, f"{name}-labels-idx1-ubyte")
    write_idx(ipath, images, compress=True)
    write_idx(lpath, labels, compress=False)
    return f"{ipath},{lpath}"


def build(folder, blas):
    exe = os.path.join(folder, "ref_blas" if blas else "ref_loops")
    cc = os.environ.get("CC", "cc")
    extra = ["-DREF_BLAS"] if blas else []
    libs = ["-lopenblas"] if blas else []
    p = subprocess.run([cc, *CFLAGS, *extra, "-o", exe, os.path.join(BENCH, "ref_trainer.c"),
                        *libs, "-lz", "-lm"], capture_output=True, text=True)
    if p.returncode != 0:
        return None, p.stderr
    return exe, ""


def train(exe, *args):
    p = subprocess.run([exe, *args], capture_output=True, text=True, timeout=300)
    return p.returncode, p.stdout, p.stderr


def epochs(out):
    return [(float(loss), float(acc)) for loss, acc in
            re.findall(r"^epoch \d+  loss ([0-9.]+)  acc ([0-9.]+)%  seconds [0-9.]+$", out, re.M)]


def without_seconds(out):
    return re.sub(r"seconds [0-9.]+", "", out)


def test_loops(exe, train_set, test_set, harness):
    args = ["--train", train_set, "--test", test_set, "--backend", "loops", "--epochs", "4",
            "--batch", "32", "--lr", "0.1", "--layers", "784,32,10", "--seed", "3"]
    rc, out, err = train(exe, *args)
    check(rc == 0 and err == "", f"loops run: exit {rc}, stderr {err!r}")
    losses = [loss for loss, _ in epochs(out)]
    check(len(losses) == 4, f"four epoch lines expected:\n{out}")
    check(len(losses) == 4 and losses[-1] < 0.5 * losses[0], f"the loss does not fall: {losses}")
    seconds, acc = harness.parse_peer(out)
    check(seconds >= 0, f"seconds parsed as {seconds}")
    check(acc > 60, f"test accuracy {acc}% is near chance (10%)")
    rc, again, err = train(exe, *args)
    check(rc == 0 and err == "", f"the rerun: exit {rc}, stderr {err!r}")
    check(without_seconds(again) == without_seconds(out), "the same seed gave another run")
    rc, other, err = train(exe, *args[:-1], "4")
    check(rc == 0 and err == "", f"the run with another seed: exit {rc}, stderr {err!r}")
    check(len(epochs(other)) == 4 and epochs(other) != epochs(out), "another seed gave the same run")
    return epochs(out)


def test_deep_and_single(exe, train_set, test_set, harness):
    rc, out, err = train(exe, "--train", train_set, "--test", test_set, "--layers",
                         "784,24,16,10", "--batch", "16", "--epochs", "3", "--lr", "0.1")
    losses = [loss for loss, _ in epochs(out)]
    check(rc == 0 and len(losses) == 3 and losses[-1] < losses[0],
          f"three layers: exit {rc}, losses {losses}, stderr {err!r}")
    rc, out, err = train(exe, "--train", train_set, "--test", test_set, "--batch", "1",
                         "--lr", "0.01", "--limit", "200", "--layers", "784,16,10")
    check(rc == 0 and harness.parse_peer(out)[1] > 30,
          f"batch 1 on 200 samples: exit {rc}\n{out}{err}")


def test_subset(exe, folder, train_set, harness):
    """bench/run.py's IDX subset writer gives files the trainer reads, of the asked size."""
    images, labels = train_set.split(",")
    sub = [os.path.join(folder, "sub-images"), os.path.join(folder, "sub-labels")]
    harness.idx_subset(images, sub[0], 100)
    with gzip.open(labels, "rb") if labels.endswith(".gz") else open(labels, "rb") as f:
        raw = f.read()
    gz = sub[1] + ".gz"
    with gzip.open(gz, "wb") as f:
        f.write(raw)
    harness.idx_subset(gz, sub[1], 100)
    check(os.path.getsize(sub[0]) == 16 + 100 * 784, "subset image file size")
    check(os.path.getsize(sub[1]) == 8 + 100, "subset label file size")
    with open(sub[1], "rb") as f:
        check(f.read()[8:] == raw[8:108], "subset labels are the first 100")
    rc, out, err = train(exe, "--train", ",".join(sub), "--layers", "784,8,10")
    check(rc == 0 and len(epochs(out)) == 1, f"subset run: exit {rc}\n{out}{err}")


def test_errors(exe, folder, train_set):
    cases = [(["--train", os.path.join(folder, "nope") + "," + train_set.split(",")[1]],
              "cannot open"),
             (["--train", train_set, "--layers", "700,10"], "first layer size"),
             (["--train", train_set, "--batch", "0"], "--batch"),
             (["--train", train_set, "--bogus", "1"], "unknown option"),
             (["--train", train_set.split(",")[0]], "IMAGES,LABELS")]
    for args, message in cases:
        rc, out, err = train(exe, *args)
        check(rc == 1 and message in err and "epoch" not in out,
              f"{args}: expected exit 1 and {message!r}, got {rc}, {err!r}")


def test_blas(folder, train_set, test_set, loops_epochs, loops_exe):
    exe, why = build(folder, blas=True)
    if exe is None:
        print("skip: OpenBLAS back end (no OpenBLAS):", why.strip().splitlines()[-1:])
        rc, _, err = train(loops_exe, "--train", train_set, "--backend", "blas")
        check(rc == 1 and "not built in" in err, f"blas without OpenBLAS: {rc} {err!r}")
        return
    args = ["--train", train_set, "--test", test_set, "--epochs", "4", "--batch", "32",
            "--lr", "0.1", "--layers", "784,32,10", "--seed", "3", "--threads", "2"]
    rc, out, err = train(exe, *args, "--backend", "blas")
    got = epochs(out)
    check(rc == 0 and len(got) == 4, f"blas run: exit {rc}, {err!r}")
    # Same maths, other summation order: the same losses to rounding.
    for (a, _), (b, _) in zip(got, loops_epochs):
        check(abs(a - b) <= 1e-3 * max(1, abs(b)), f"blas loss {a} vs loops loss {b}")


class NncContext:
    """What bench/run.py's run_nnc reads of its context."""

    def __init__(self, out, train_set):
        self.out = out
        self.data = {k: tuple(train_set.split(",")) for k in "abc"}
        self.nnc_args = []


def test_nnc(nnc, folder, train_set, test_set, harness):
    """The nnc under test compiles each workload as the harness does and trains it one
    epoch on the synthetic set; the harness parses the epoch and test lines."""
    harness.TEST = tuple(test_set.split(","))  # run_nnc's test set: the synthetic one
    ctx = NncContext(folder, train_set)
    for k in "abc":
        try:
            harness.compile_seconds(nnc, os.path.join(BENCH, f"mlp_{k}.nn"),
                                    os.path.join(folder, f"mlp_{k}"))
            seconds, acc = harness.run_nnc(ctx, k, 1, None)
        except RuntimeError as e:  # the harness's run(): a nonzero exit or a missing line
            check(False, f"nnc workload {k}: {e}")
            continue
        check(seconds > 0, f"nnc workload {k}: {seconds} s an epoch")
        check(acc > 30, f"nnc workload {k}: test accuracy {acc}% is near chance (10%)")


def test_torch(folder, train_set, test_set, harness):
    probe = subprocess.run([sys.executable, "-c", "import torch"], capture_output=True)
    if probe.returncode != 0:
        print("skip: PyTorch peer (no torch)")
        return
    p = subprocess.run([sys.executable, os.path.join(BENCH, "torch_peer.py"), "--train",
                        train_set, "--test", test_set, "--epochs", "3", "--batch", "32",
                        "--lr", "0.1", "--layers", "784,32,10", "--threads", "1"],
                       capture_output=True, text=True, timeout=300)
    losses = [float(x) for x in re.findall(r"^threads 1  epoch \d+  loss ([0-9.]+)", p.stdout,
                                           re.M)]
    check(p.returncode == 0 and len(losses) == 3 and losses[-1] < losses[0],
          f"torch peer: exit {p.returncode}, losses {losses}, {p.stderr!r}")
    if p.returncode == 0:
        check(harness.parse_peer(p.stdout, prefix=r"threads 1\s+")[1] > 60,
              f"torch peer accuracy:\n{p.stdout}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nnc", required=True)
    ap.add_argument("--build")
    args = ap.parse_args()
    nnc = os.path.abspath(args.nnc)
    harness = load_harness()
    with tempfile.TemporaryDirectory() as folder:
        train_set = make_set(folder, "train", 512, 1)
        test_set = make_set(folder, "test", 256, 2)
        exe, why = build(folder, blas=False)
        check(exe is not None, f"ref_trainer.c does not build:\n{why}")
        if exe:
            loops = test_loops(exe, train_set, test_set, harness)
            test_deep_and_single(exe, train_set, test_set, harness)
            test_subset(exe, folder, train_set, harness)
            test_errors(exe, folder, train_set)
            test_blas(folder, train_set, test_set, loops, exe)
        test_nnc(nnc, folder, train_set, test_set, harness)
        test_torch(folder, train_set, test_set, harness)
    print("FAILED" if FAILS else "ok", len(FAILS) or "")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
