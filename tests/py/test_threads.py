#!/usr/bin/python3
"""The generated code's fast paths: register-blocked products, the thread pool, the
gradient check done by generated code.

1. A model whose products are big enough for the thread pool, with sizes that leave every
   kind of remainder (columns not a multiple of the register block or the vector width, a
   contracted length not a multiple of the vector width, a batch not a multiple of the row
   block and a short last batch), trains to the same weights as `nnc --interp` (f32 rtol
   1e-4, f64 rtol 1e-9), through both the forward products and the gradient products.
2. --threads 1, 2 and 3 save the same .npz bytes (every element of a product is one whole
   sum in a fixed order, whoever computes it); the default (all cores) does too.
3. A finite loss with an infinite gradient (sqrt at 0) stops with the runtime's message
   naming the param, exit status 1, and the weights saved are those from before the step.
4. --threads takes an integer >= 1.
5. With sgd fused into the weight-gradient products, --log's gradient norms still match
   the interpreter's, and its weights (the step's slow path) are the fast path's bits.
6. Values so large that the fused update's overflow bound (n max|U| max|V|) fails, while
   the gradient itself is finite: the step takes the checked path and updates the weights
   as the interpreter does.
7. Adam and momentum, whose updates of a large param are split between the threads in
   blocks of elements: the interpreter's weights, and the same bytes for 1, 2 and 3 threads.
"""
import os
import re

import numpy as np

from nnctest import fail, main, run

MODEL = """model wide {
    input x[%(k)d]
    target t[%(c)d]
    h = dense(x, %(h)d, relu)
    g = dense(h, %(h2)d, tanh)
    z = dense(g, %(c)d)
    loss = cross_entropy(softmax(z), t)
}
train wide {
    data = csv("train.csv", label = true)
    epochs = 2
    batch = %(b)d
    optimizer = sgd(lr = 0.05)
    seed = 3
}
"""
SIZES = {"k": 147, "h": 133, "h2": 70, "c": 5, "b": 27}  # 27*133*147 > the pool's threshold

NANGRAD = """model nangrad {
    input x[2]
    param w[2] = zeros
    param v[2] = ones
    y = v * x
    output y
    loss = sum(sqrt(w * x)) + sum(v * x)
}
train nangrad {
    data = csv("pos.csv")
    epochs = 1
    batch = 2
}
"""


HUGE = """model huge {
    input x[4]
    target t[2]
    param W[2, 4] = zeros
    loss = mse(W @ x, t)
}
train huge {
    data = csv("huge.csv")
    epochs = 1
    batch = 4
    optimizer = sgd(lr = 1e-30)
}
"""


def write(tmp, name, text):
    with open(os.path.join(tmp, name), "w") as f:
        f.write(text)


def blob(tmp, name):
    with open(os.path.join(tmp, name), "rb") as f:
        return f.read()


def setup_wide(nnc, tmp):
    rng = np.random.default_rng(7)
    n = 5 * SIZES["b"] + 11  # a short last batch
    x = rng.uniform(0, 1, size=(n, SIZES["k"]))
    labels = rng.integers(0, SIZES["c"], size=n)
    with open(os.path.join(tmp, "train.csv"), "w") as f:
        for row, lab in zip(x, labels):
            f.write(",".join("%.6g" % v for v in row) + ",%d\n" % lab)
    write(tmp, "wide.nn", MODEL % SIZES)


def close(tmp, a, b, rtol):
    wa, wb = np.load(os.path.join(tmp, a)), np.load(os.path.join(tmp, b))
    for k in wa.files:
        if not np.allclose(wa[k], wb[k], rtol=rtol, atol=rtol * 1e-2):
            worst = np.max(np.abs(wa[k].astype(np.float64) - wb[k]))
            fail(f"{a} and {b} differ in {k} (max abs difference {worst:g})")


def test_against_interpreter(nnc, tmp):
    for prec, rtol in (("f32", 1e-4), ("f64", 1e-9)):
        ref = run([nnc, "--interp", "--precision=" + prec, "wide.nn", "--", "--save",
                   "ref.npz", "--quiet"], tmp)
        run([nnc, "--precision=" + prec, "wide.nn", "-o", "wide_" + prec], tmp)
        out = run(["./wide_" + prec, "--save", prec + ".npz", "--quiet"], tmp)
        close(tmp, prec + ".npz", "ref.npz", rtol)
        got = re.search(r"train: loss (\S+)", out.stdout).group(1)
        want = re.search(r"train: loss (\S+)", ref.stdout).group(1)
        if not np.isclose(float(got), float(want), rtol=rtol * 10):
            fail(f"{prec}: train loss {got}, the interpreter says {want}")


def log_rows(tmp, name):
    with open(os.path.join(tmp, name)) as f:
        lines = f.read().split()
    return lines[0].split(","), np.array([[float(v or "nan") for v in l.split(",")] for l in lines[1:]])


def test_log_gradients(nnc, tmp):
    """With sgd fused into the products, --log still gets the gradients for their norms."""
    run(["./wide_f32", "--log", "exe.csv", "--quiet", "--save", "l.npz"], tmp)
    run([nnc, "--interp", "wide.nn", "--", "--log", "ref.csv", "--quiet", "--save", "r.npz"], tmp)
    head, got = log_rows(tmp, "exe.csv")
    ref_head, want = log_rows(tmp, "ref.csv")
    cols = [i for i, h in enumerate(head) if h.startswith("grad_norm:")]
    if head != ref_head or len(cols) != 6:
        fail(f"--log columns {head} vs {ref_head}")
    if not np.allclose(got[:, cols], want[:, cols], rtol=1e-3) or np.any(got[:, cols] == 0):
        fail(f"gradient norms differ from the interpreter's:\n{got[:, cols]}\n{want[:, cols]}")
    # --log takes the step's slow path (gradients stored, checked, then applied): the same bits
    if blob(tmp, "l.npz") != blob(tmp, "t1.npz"):
        fail("--log changed the trained weights")


def test_thread_counts(nnc, tmp):
    blobs = {}
    for t in ("1", "2", "3", None):
        name = "t%s.npz" % t
        run(["./wide_f32", "--save", name, "--quiet"] + (["--threads", t] if t else []), tmp)
        blobs[t] = blob(tmp, name)
    run(["./wide_f32", "--save", "again.npz", "--quiet", "--threads", "2"], tmp)
    if blob(tmp, "again.npz") != blobs["2"]:
        fail("two runs with --threads 2 saved different weights")
    for t, b in blobs.items():
        if b != blobs["1"]:
            fail(f"--threads {t} saved other weights than --threads 1")


def test_nonfinite_gradient(nnc, tmp):
    write(tmp, "nangrad.nn", NANGRAD)
    write(tmp, "pos.csv", "1,2\n3,4\n")
    run([nnc, "nangrad.nn", "-o", "nangrad"], tmp)
    p = run(["./nangrad", "--save", "ng.npz"], tmp, code=1)
    want = "nangrad: error: the gradient of w became nan or infinite in epoch 1, batch 1 of 1"
    if want not in p.stderr:
        fail(f"expected '{want}' in:\n{p.stderr}")
    w = np.load(os.path.join(tmp, "ng.npz"))
    if not (np.all(w["w"] == 0) and np.all(w["v"] == 1)):
        fail(f"the weights saved after the stop are not the initial ones: {dict(w)}")


def test_optimizers(nnc, tmp):
    """The wide model's first weight (147 x 133 elements) is updated in 5 blocks."""
    base = MODEL % SIZES
    for name, opt in (("adam", "adam(lr = 0.01)"), ("momentum", "sgd(lr = 0.05, momentum = 0.9)")):
        write(tmp, name + ".nn", base.replace("sgd(lr = 0.05)", opt).replace("wide", name))
        run([nnc, "--interp", name + ".nn", "--", "--save", name + "_ref.npz", "--quiet"], tmp)
        run([nnc, name + ".nn", "-o", name], tmp)
        blobs = []
        for t in ("1", "2", "3"):
            out = f"{name}_t{t}.npz"
            run(["./" + name, "--save", out, "--quiet", "--threads", t], tmp)
            blobs.append(blob(tmp, out))
        if blobs[1:] != blobs[:1] * 2:
            fail(f"{name}: --threads 1, 2 and 3 saved different weights")
        close(tmp, name + "_t2.npz", name + "_ref.npz", 1e-4)


def test_huge_values(nnc, tmp):
    """One sample's input and target near 1e19: n max|U| max|V| = 4e38 is past the bound,
    the gradient (2.5e37) and the loss are finite."""
    write(tmp, "huge.nn", HUGE)
    write(tmp, "huge.csv", "1e19,1,2,3,1e19,-1\n1,2,3,4,5,6\n-1,0,1,2,3,4\n2,2,2,2,2,2\n")
    ref = run([nnc, "--interp", "huge.nn", "--", "--save", "huge_ref.npz", "--quiet"], tmp)
    run([nnc, "huge.nn", "-o", "huge"], tmp)
    out = run(["./huge", "--save", "huge.npz", "--quiet"], tmp)
    close(tmp, "huge.npz", "huge_ref.npz", 1e-4)
    w = np.load(os.path.join(tmp, "huge.npz"))["W"]
    if not (np.all(np.isfinite(w)) and abs(w[0, 0]) > 1e6):
        fail(f"huge: the update was not applied: W = {w}\n{out.stdout}{ref.stdout}")


def test_threads_flag(nnc, tmp):
    for bad in ("0", "-1", "two"):
        p = run(["./wide_f32", "--threads", bad], tmp, code=1)
        if "--threads: '%s' is not an integer >= 1" % bad not in p.stderr:
            fail(f"--threads {bad}: {p.stderr!r}")


if __name__ == "__main__":
    main("nnc-threads-", [setup_wide, test_against_interpreter, test_thread_counts,
                          test_log_gradients, test_nonfinite_gradient, test_threads_flag,
                          test_huge_values, test_optimizers])
