#!/usr/bin/python3
"""The generated code's fast paths: register-blocked products, the thread pool, the
gradient check done by generated code.

1. A model whose products are big enough for the thread pool, with sizes that leave every
   kind of remainder (columns not a multiple of the register block or the vector width, a
   contracted length not a multiple of the vector width, a batch not a multiple of the row
   block and a short last batch), trains to the same weights as `nnc --interp` (f32 rtol
   1e-4, f64 rtol 1e-9), through both the forward products and the gradient products.
   The f32 comparisons use softplus where the f64 ones use relu: another host's vector
   width sums in another order, and an f32 pre-activation within ~1e-6 of 0 then changes
   sign, its relu' jumps from 0 to 1, and momentum carries the difference on (seen on AVX2:
   5e-5 in h.W). In f64 the orders differ by ~1e-16 relative, so a flip needs a
   pre-activation within ~1e-14 of 0: among the ~40 000 of a run, drawn from a continuous
   spread of ~0.1, the chance is below 1e-8. Equal bytes across thread counts need no
   tolerance and keep relu.
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
    h = dense(x, %(h)d, %(act)s)
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
# The precision each activation is compared with the interpreter in (see 1. above).
COMPARED = (("f32", "softplus", 1e-4), ("f64", "relu", 1e-9))


def model(act, opt="sgd(lr = 0.05)", name="wide"):
    return (MODEL % dict(SIZES, act=act)).replace("sgd(lr = 0.05)", opt).replace("wide", name)

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
    write(tmp, "wide.nn", model("relu"))
    write(tmp, "smooth.nn", model("softplus", name="smooth"))
    run([nnc, "wide.nn", "-o", "wide_f32"], tmp)


def close(tmp, a, b, rtol):
    wa, wb = np.load(os.path.join(tmp, a)), np.load(os.path.join(tmp, b))
    for k in wa.files:
        if not np.allclose(wa[k], wb[k], rtol=rtol, atol=rtol * 1e-2):
            worst = np.max(np.abs(wa[k].astype(np.float64) - wb[k]))
            fail(f"{a} and {b} differ in {k} (max abs difference {worst:g})")


def test_against_interpreter(nnc, tmp):
    for prec, act, rtol in COMPARED:
        src = "smooth.nn" if act == "softplus" else "wide.nn"
        ref = run([nnc, "--interp", "--precision=" + prec, src, "--", "--save",
                   "ref.npz", "--quiet"], tmp)
        run([nnc, "--precision=" + prec, src, "-o", "cmp_" + prec], tmp)
        out = run(["./cmp_" + prec, "--save", prec + ".npz", "--quiet"], tmp)
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
    """With sgd fused into the products, --log still gets the gradients for their norms
    (f32, so the smooth model: see 1. above)."""
    run(["./cmp_f32", "--log", "exe.csv", "--quiet", "--save", "l.npz"], tmp)
    run(["./cmp_f32", "--quiet", "--save", "nolog.npz"], tmp)
    run([nnc, "--interp", "smooth.nn", "--", "--log", "ref.csv", "--quiet", "--save", "r.npz"], tmp)
    head, got = log_rows(tmp, "exe.csv")
    ref_head, want = log_rows(tmp, "ref.csv")
    cols = [i for i, h in enumerate(head) if h.startswith("grad_norm:")]
    if head != ref_head or len(cols) != 6:
        fail(f"--log columns {head} vs {ref_head}")
    if not np.allclose(got[:, cols], want[:, cols], rtol=1e-3) or np.any(got[:, cols] == 0):
        fail(f"gradient norms differ from the interpreter's:\n{got[:, cols]}\n{want[:, cols]}")
    # --log takes the step's slow path (gradients stored, checked, then applied): the same bits
    if blob(tmp, "l.npz") != blob(tmp, "nolog.npz"):
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
    """The wide model's first weight (147 x 133 elements) is updated in 5 blocks. Equal
    bytes for any thread count (f32, relu); the interpreter's weights (see 1. above)."""
    for name, opt in (("adam", "adam(lr = 0.01)"), ("momentum", "sgd(lr = 0.05, momentum = 0.9)")):
        for prec, act, rtol in COMPARED:
            src = f"{name}_{act}.nn"
            write(tmp, src, model(act, opt, name))
            run([nnc, "--interp", "--precision=" + prec, src, "--", "--save", name + "_ref.npz",
                 "--quiet"], tmp)
            run([nnc, "--precision=" + prec, src, "-o", name + "_" + prec], tmp)
            run(["./" + name + "_" + prec, "--save", name + "_" + prec + ".npz", "--quiet",
                 "--threads", "2"], tmp)
            close(tmp, name + "_" + prec + ".npz", name + "_ref.npz", rtol)
        write(tmp, name + ".nn", model("relu", opt, name))
        run([nnc, name + ".nn", "-o", name], tmp)
        blobs = []
        for t in ("1", "2", "3"):
            out = f"{name}_t{t}.npz"
            run(["./" + name, "--save", out, "--quiet", "--threads", t], tmp)
            blobs.append(blob(tmp, out))
        if blobs[1:] != blobs[:1] * 2:
            fail(f"{name}: --threads 1, 2 and 3 saved different weights")


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
