#!/usr/bin/python3
"""The generated code of the image ops (conv2d and its backward helpers, max/avg pooling and
their backward, concat/slice, flatten/reshape, dropout masks) against the interpreter.

Many small CNNs (stride 1/2/3, padding 0/1/2, non-square images, several channels, kernels
1..5, pools with stride != k, dropout, concat, reshape) are trained for 2 epochs on a random
csv with a short last batch, by the compiled executable and by `nnc --interp`:
  1. f64: the saved weights agree to rtol 1e-9 (atol 1e-12) and so do the printed losses;
  2. f32 (both sides f32): rtol 1e-4, atol 1e-5. Why that holds: the two sides add the
     same terms in other orders. The longest sums are the weight gradients' (n*H'*W' terms,
     at most 5*16*16 = 1280 here) and the conv products' (C*kh*kw <= 75); a sum of L terms in
     f32 carries a relative error of order sqrt(L) * 2^-24 (about 2e-6 for L = 1280, the
     worst case L * 2^-24 = 7.6e-5 still under 1e-4) of the sum of its terms' magnitudes,
     and 2 epochs of a few steps each at lr 0.01 carry it into the weights scaled by lr;
  3. --threads 1, 2 and 3 save the same bytes (the models with enough work for the pool to
     split it: every output element is one task's whole sum in a fixed order).
Each model is also compiled with --cpu=x86-64-v3 (AVX2: 16 vector registers, 8-lane f32
vectors, other blocks) when the host runs it, and must agree the same way.
"""
import argparse
import concurrent.futures
import os
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nnctest import sanitized  # noqa: E402

V3 = False
PRECISIONS = (("f64", 1e-9, 1e-12), ("f32", 1e-4, 1e-5))

HEAD = "model m {\n    input  x[%s]\n    target t[%d]\n"

# name -> (input dims, target size, body, optimizer); each body ends in logits z.
MODELS = {
    "s1p0k3": ("1, 6, 6", 3, """
    c = conv(x, 2, 3, relu)
    p = maxpool(c, 2)
    z = dense(flatten(p), 3)""", "sgd(lr = 0.05)"),
    "s2p1k3_nonsquare": ("2, 7, 5", 3, """
    c = conv(x, 3, 3, tanh, stride = 2, padding = 1)
    p = avgpool(c, 2, stride = 1)
    z = dense(flatten(p), 3)""", "adam(lr = 0.01)"),
    "s3p2k5": ("3, 9, 8", 4, """
    c = conv(x, 4, 5, relu, stride = 3, padding = 2)
    z = dense(flatten(c), 4)""", "sgd(lr = 0.05)"),
    "k1_stack_pool3s2": ("3, 7, 8", 2, """
    a = conv(x, 2, 1, tanh)
    c = conv(a, 5, 2, relu, stride = 1, padding = 1)
    p = maxpool(c, 3, stride = 2)
    z = dense(flatten(p), 2)""", "adam(lr = 0.01)"),
    "k4s1p2_avg3": ("2, 6, 9", 3, """
    c = conv(x, 3, 4, padding = 2)
    p = avgpool(c, 3, stride = 2)
    z = dense(flatten(p), 3)""", "sgd(lr = 0.05)"),
    "k2s2_maxpool1": ("1, 8, 8", 2, """
    c = conv(x, 6, 2, relu, stride = 2)
    p = maxpool(c, 1)
    q = maxpool(p, 2, stride = 3)
    z = dense(flatten(q), 2)""", "sgd(lr = 0.05)"),
    "dropout": ("2, 6, 6", 3, """
    c = conv(x, 4, 3, relu, padding = 1)
    e = dropout(c, 0.3)
    p = maxpool(e, 2)
    h = dense(flatten(p), 8, relu)
    d = dropout(h, 0.5)
    z = dense(d, 3)""", "adam(lr = 0.01)"),
    "concat_reshape": ("2, 6, 7", 3, """
    a = conv(x, 2, 3, relu, padding = 1)
    b = conv(x, 3, 1, tanh)
    c = concat(a, b, x)
    d = conv(c, 4, 3, relu, stride = 2)
    r = reshape(d, [4, 6])
    z = dense(flatten(r), 3)""", "sgd(lr = 0.05)"),
    "conv2d_fn": ("3, 5, 6", 2, """
    param K[5, 3, 2, 3] = normal(0, 0.3)
    param kb[5] = normal(0, 0.1)
    c = conv2d(x, K, kb, stride = 2, padding = 1)
    h = relu(c) * 2 - sigmoid(c)
    z = dense(flatten(h), 2)""", "adam(lr = 0.01)"),
    # enough work for the pool to split (>= 2^18 multiply-adds a kernel), blocks with
    # tails in every direction: P = 256 and 64 (f32: 16 lanes x 4), F = 8 and 13, KK = 9, 72
    "fashion_like": ("1, 16, 16", 10, """
    c1 = conv(x, 8, 3, relu, padding = 1)
    p1 = maxpool(c1, 2)
    c2 = conv(p1, 13, 3, relu, padding = 1)
    p2 = maxpool(c2, 2)
    h  = dense(flatten(p2), 16, relu)
    d  = dropout(h, 0.25)
    z  = dense(d, 10)""", "adam(lr = 0.01)"),
}
BIG = ["fashion_like", "concat_reshape"]  # also run with 1, 2, 3 threads


class Failure(Exception):
    pass


def run(cmd, cwd):
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        raise Failure(f"{' '.join(cmd)} exited {p.returncode}:\n{p.stdout}{p.stderr}")
    return p.stdout


def source(name):
    dims, targets, body, opt = MODELS[name]
    return (HEAD % (dims, targets) + body + "\n    loss = cross_entropy(softmax(z), t)\n}\n"
            + f"train m {{\n    data = csv(\"data.csv\")\n    optimizer = {opt}\n    seed = 3\n}}\n")


def write_case(tmp, name, rng, rows=13):
    dims, targets, _, _ = MODELS[name]
    n = int(np.prod([int(d) for d in dims.split(",")]))
    path = os.path.join(tmp, name + ".nn")
    with open(path, "w") as f:
        f.write(source(name))
    data = np.hstack([rng.uniform(-1, 1, size=(rows, n)), rng.uniform(0.1, 0.9, size=(rows, targets))])
    with open(os.path.join(tmp, "data.csv"), "w") as f:
        for row in data:
            f.write(",".join("%.17g" % v for v in row) + "\n")
    return path


def train(prec, save, batch):
    return ["--epochs", "2", "--batch", str(batch), "--data", "data.csv", "--save", save]


def losses(out):
    """The numbers after `loss` on the epoch lines."""
    return [float(m) for m in re.findall(r"^epoch .*?loss ([-+0-9.e]+)", out, re.M)]


def compare(fa, fb, rtol, atol, what):
    a, b = np.load(fa), np.load(fb)
    if sorted(a.files) != sorted(b.files):
        raise Failure(f"{what}: keys differ: {a.files} vs {b.files}")
    for k in a.files:
        if a[k].shape != b[k].shape or not np.allclose(a[k], b[k], rtol=rtol, atol=atol):
            err = np.max(np.abs(a[k].astype(np.float64) - b[k])) if a[k].shape == b[k].shape else "shape"
            raise Failure(f"{what}: param {k} differs by up to {err}")


def host_runs_v3():
    with open("/proc/cpuinfo") as f:
        flags = f.read()
    return all(f" {x}" in flags for x in ("avx2", "fma", "bmi2", "movbe"))


def check(nnc, name, seed):
    tmp = tempfile.mkdtemp(prefix="nnc-conv-")
    try:
        path = write_case(tmp, name, np.random.default_rng(seed))
        batch = 5
        for prec, rtol, atol in PRECISIONS:
            ref = os.path.join(tmp, f"ref_{prec}.npz")
            rout = run([nnc, "--interp", f"--precision={prec}", path, "--"] + train(prec, ref, batch), tmp)
            cpus = [("native", [])] + ([("v3", ["--cpu=x86-64-v3"])] if V3 else [])
            for cpu, flags in cpus:
                exe = os.path.join(tmp, f"{prec}_{cpu}")
                run([nnc, "-O2", f"--precision={prec}", *flags, path, "-o", exe], tmp)
                got = os.path.join(tmp, f"got_{prec}_{cpu}.npz")
                gout = run([exe] + train(prec, got, batch), tmp)
                compare(got, ref, rtol, atol, f"{name} {prec} {cpu} vs --interp")
                gl, rl = losses(gout), losses(rout)
                if len(gl) != 2 or len(gl) != len(rl) or not np.allclose(gl, rl, rtol=rtol, atol=atol):
                        raise Failure(f"{name} {prec} {cpu}: losses {gl} vs interpreter {rl}")
                if name in BIG:
                    saves = []
                    for t in ("1", "2", "3"):
                        s = os.path.join(tmp, f"t{t}.npz")
                        run([exe] + train(prec, s, 16) + ["--threads", t], tmp)
                        with open(s, "rb") as f:
                            saves.append(f.read())
                    if saves[1] != saves[0] or saves[2] != saves[0]:
                        raise Failure(f"{name} {prec} {cpu}: --threads 1/2/3 saved other bytes")
        return None
    except Failure as e:
        return str(e)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nnc", required=True)
    ap.add_argument("--only", help="one model")
    ap.add_argument("--build")
    args = ap.parse_args()
    nnc = os.path.abspath(args.nnc)
    names = [args.only] if args.only else list(MODELS)
    global V3, PRECISIONS  # the AVX2 build and f32 too; not under the sanitizers, whose C
    V3 = host_runs_v3() and not sanitized(args.build)  # paths are the same
    if sanitized(args.build):
        PRECISIONS = PRECISIONS[:1]
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda a: check(nnc, *a), [(n, i) for i, n in enumerate(names)]))
    failures = [f for f in results if f]
    for f in failures:
        print("FAIL:", f)
    print(f"{len(names) - len(failures)} of {len(names)} conv models agree with the interpreter")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
