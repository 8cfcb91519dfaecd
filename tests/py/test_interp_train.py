#!/usr/bin/python3
"""nnc --interp: the reference trainer.

1. `nnc --interp examples/xor.nn -- --epochs 2000 --quiet` drives xor's loss down.
2. Its weights after a few steps equal an independent NumPy re-derivation of xor's
   forward pass, backward pass and optimizer step (sgd, sgd with momentum, adam, as
   spec section 8 states them), f64, with several batches per epoch and a short last
   batch, so the batch loop, the mean gradient and adam's step count are all checked.
3. A model without a target (tests/codegen/autoencoder.nn) still has a loss: the epoch,
   train and test lines report what NumPy computes from the saved weights, not 0.
"""
import json
import os
import re
import subprocess
import sys

import numpy as np

from nnctest import main

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
XOR = os.path.join(ROOT, "examples", "xor.nn")
DATA = [([0, 0], [0]), ([0, 1], [1]), ([1, 0], [1]), ([1, 1], [0]), ([0.5, 0.25], [1])]

MODEL = """
model xor {
    input  x[2]
    target t[1]
    param W1[4, 2] = normal(0, 1)
    param b1[4]    = uniform(-0.5, 0.5)
    param W2[1, 4] = xavier
    param b2[1]    = const(0.1)
    h = sigmoid(W1 @ x + b1)
    y = sigmoid(W2 @ h + b2)
    output y
    loss = mse(y, t)
}
train xor {
    data      = %s
    epochs    = 3
    batch     = 2
    optimizer = %s
    seed      = 4
    shuffle   = false
}
"""


def run(nnc, args, cwd):
    proc = subprocess.run([nnc] + args, cwd=cwd, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        sys.exit(f"FAIL: nnc {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}")
    return proc.stdout


def final_loss(out):
    m = re.search(r"^train: loss (\S+)", out, re.M)
    if not m:
        sys.exit(f"FAIL: no 'train: loss' line in:\n{out}")
    return float(m.group(1))


def test_xor_learns(nnc, tmp):
    before = final_loss(run(nnc, ["--interp", XOR, "--", "--epochs", "1", "--quiet"], tmp))
    after = final_loss(run(nnc, ["--interp", XOR, "--", "--epochs", "2000", "--quiet"], tmp))
    print(f"xor: loss {before} after 1 epoch, {after} after 2000")
    if not after < 0.05 or not after < before / 4:
        sys.exit("FAIL: the interpreter's training did not drive xor's loss down")


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def gradients(w, x, t):
    """xor's loss gradient for one sample, derived by hand."""
    h = sigmoid(w["W1"] @ x + w["b1"])
    y = sigmoid(w["W2"] @ h + w["b2"])
    dz2 = 2 * (y - t) * y * (1 - y)
    dz1 = (w["W2"].T @ dz2) * h * (1 - h)
    return {"W1": np.outer(dz1, x), "b1": dz1, "W2": np.outer(dz2, h), "b2": dz2}


def reference(w, opt, epochs, batch):
    w = {k: v.copy() for k, v in w.items()}
    state = {k: [np.zeros_like(v), np.zeros_like(v)] for k, v in w.items()}
    step = 0
    for _ in range(epochs):
        for start in range(0, len(DATA), batch):
            samples = DATA[start:start + batch]
            g = {k: np.zeros_like(v) for k, v in w.items()}
            for x, t in samples:
                for k, v in gradients(w, np.array(x, float), np.array(t, float)).items():
                    g[k] += v
            step += 1
            for k in w:
                gk = g[k] / len(samples)
                m, v = state[k]
                if opt["kind"] == "adam":
                    b1, b2 = opt["beta1"], opt["beta2"]
                    m[...] = b1 * m + (1 - b1) * gk
                    v[...] = b2 * v + (1 - b2) * gk * gk
                    mhat, vhat = m / (1 - b1 ** step), v / (1 - b2 ** step)
                    w[k] -= opt["lr"] * mhat / (np.sqrt(vhat) + opt["eps"])
                elif opt.get("momentum"):
                    m[...] = opt["momentum"] * m + gk
                    w[k] -= opt["lr"] * m
                else:
                    w[k] -= opt["lr"] * gk
    return w


def optimizer_text(opt):
    if opt["kind"] == "adam":
        return "adam(lr = %g, beta1 = %g, beta2 = %g, eps = %g)" % (
            opt["lr"], opt["beta1"], opt["beta2"], opt["eps"])
    if opt.get("momentum"):
        return "sgd(lr = %g, momentum = %g)" % (opt["lr"], opt["momentum"])
    return "sgd(lr = %g)" % opt["lr"]


def test_exact_steps(nnc, tmp):
    data = "[" + ", ".join(f"{x} -> {t}" for x, t in DATA) + "]"
    optimizers = [
        {"kind": "sgd", "lr": 0.5},
        {"kind": "sgd", "lr": 0.3, "momentum": 0.9},
        {"kind": "adam", "lr": 0.05, "beta1": 0.8, "beta2": 0.99, "eps": 1e-6},
    ]
    for opt in optimizers:
        src = os.path.join(tmp, "steps.nn")
        with open(src, "w") as f:
            f.write(MODEL % (data, optimizer_text(opt)))
        f64 = ["--precision=f64", "--interp", src, "--"]
        run(nnc, f64 + ["--epochs", "0", "--save", "init.npz"], tmp)
        run(nnc, f64 + ["--quiet", "--save", "final.npz"], tmp)
        init = dict(np.load(os.path.join(tmp, "init.npz")))
        got = dict(np.load(os.path.join(tmp, "final.npz")))
        want = reference(init, opt, epochs=3, batch=2)
        for k in want:
            if got[k].dtype != np.float64 or got[k].shape != want[k].shape:
                sys.exit(f"FAIL {opt['kind']}: {k} saved as {got[k].dtype} {got[k].shape}")
            err = np.max(np.abs(got[k] - want[k]))
            moved = np.max(np.abs(want[k] - init[k]))
            if not err <= 1e-12 or not moved > 1e-3:
                sys.exit(f"FAIL {optimizer_text(opt)}: {k} differs from NumPy by {err} "
                         f"(moved {moved})\ngot {got[k]}\nwant {want[k]}")
        print(f"{optimizer_text(opt)}: 9 steps equal NumPy's")


AE = os.path.join(ROOT, "tests", "codegen", "autoencoder.nn")


def inline_rows(src, key):
    """The samples of an inline source `key = [[...], ...]` (inputs only) as a matrix."""
    m = re.search(r"^\s*%s\s*=\s*(\[\[.*?\]\])\s*$" % key, src, re.M)
    return np.array(json.loads(m.group(1)), dtype=float)


def ae_loss(w, x):
    """mean((W2 @ tanh(W1 @ x + b1) - x)^2) for each row of x, then their mean."""
    h = np.tanh(x @ w["W1"].T + w["b1"])
    return np.mean(np.mean((h @ w["W2"].T - x) ** 2, axis=1))


def test_targetless_loss(nnc, tmp):
    with open(AE) as f:
        src = f.read()
    data, test = inline_rows(src, "data"), inline_rows(src, "test")
    f64 = ["--precision=f64", "--interp", AE, "--"]
    run(nnc, f64 + ["--epochs", "0", "--save", os.path.join(tmp, "ae0.npz")], tmp)
    out = run(nnc, f64 + ["--batch", str(len(data)), "--save", os.path.join(tmp, "ae.npz")], tmp)
    w0 = dict(np.load(os.path.join(tmp, "ae0.npz")))
    w = dict(np.load(os.path.join(tmp, "ae.npz")))
    # One batch an epoch: epoch 1's loss is that of the initial weights.
    want = {"epoch 1": ae_loss(w0, data), "train:": ae_loss(w, data), "test:": ae_loss(w, test)}
    for label, value in want.items():
        m = re.search(r"^%s\s+loss (\S+)" % re.escape(label), out, re.M)
        if not m or not abs(float(m.group(1)) - value) <= 1e-6 or value < 1e-3:
            sys.exit(f"FAIL: autoencoder '{label}' loss: want {value:.6f} in:\n{out}")
    if "acc" in out:
        sys.exit(f"FAIL: accuracy reported for a model without a target:\n{out}")
    print(f"autoencoder: train loss {want['train:']:.6f}, test loss {want['test:']:.6f} as NumPy's")


if __name__ == "__main__":
    main("nnc-interp-", [test_xor_learns, test_exact_steps, test_targetless_loss])
