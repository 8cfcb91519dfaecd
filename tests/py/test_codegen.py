#!/usr/bin/python3
"""End to end through the LLVM code generator.

1. `nnc examples/xor.nn -o X` builds an executable that trains xor to loss < 0.01.
2. `nnc --run` prints the same losses as the executable.
3. f32 builds save float32 arrays, --precision=f64 builds float64; keys and shapes are
   the params'; the same seed gives identical .npz bytes, another seed other weights.
4. --epochs 0 --load W.npz --test FILE only evaluates, and reports what --interp reports.
5. --emit=llvm|asm go to stdout (or -o), obj defaults to MODEL.o, exe to ./MODEL; -O0..-O3.
6. An output that cannot be written is `nnc: error: ...`, exit 1, and no file at all.
7. A loss without a target (an autoencoder) is still evaluated: the train/test lines
   report what numpy computes from the saved weights.
8. A stack of 12 equal dense layers gets one kernel per distinct product, not one per
   product (36), and still trains to the interpreter's weights (f64, rtol 1e-9).
9. An executable is compiled in two halves on two threads (cg_split.c): for the stack and
   a small CNN, the executable differs from the one-thread build's (NNC_COMPILE_THREADS=1;
   both builds are deterministic, so the cut did happen) and trains to the same bytes as
   it and as --run. A 300-statement chain, whose checked step (optnone) is compiled alone
   at -O0, stops at a non-finite loss with the same message and the same saved bytes.
"""
import os
import re

import numpy as np

from nnctest import fail, main, run, sanitized

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
XOR = os.path.join(ROOT, "examples", "xor.nn")
SHAPES = {"W1": (4, 2), "b1": (4,), "W2": (1, 4), "b2": (1,)}


def text(p):
    return p.stdout


def losses(out):
    """The report without speeds and file names: what two runs of one training share."""
    return [re.sub(r"\s+\S+ samples/s", "", l) for l in out.splitlines() if not l.startswith("saved")]


def final_loss(out):
    m = re.search(r"^train: loss (\S+)", out, re.M)
    if not m:
        fail(f"no 'train: loss' line in:\n{out}")
    return float(m.group(1))


def test_xor_trains(nnc, tmp):
    run([nnc, XOR, "-o", "X"], tmp)
    out = text(run(["./X", "--save", "trained.npz"], tmp))
    loss = final_loss(out)
    if not loss < 0.01:
        fail(f"xor's final loss is {loss}, expected < 0.01:\n{out}")
    w = np.load(os.path.join(tmp, "trained.npz"))
    if {k: w[k].shape for k in w.files} != SHAPES or any(w[k].dtype != np.float32 for k in w.files):
        fail(f"xor.npz holds {[(k, w[k].dtype, w[k].shape) for k in w.files]}")


def test_run_matches_exe(nnc, tmp):
    exe = losses(text(run(["./X", "--epochs", "200", "--save", "a.npz"], tmp)))
    jit = losses(text(run([nnc, "--run", XOR, "--", "--epochs", "200", "--save", "b.npz"], tmp)))
    if exe != jit or len(exe) < 200:
        fail("--run and the executable print different losses:\n" + "\n".join(exe[-3:] + jit[-3:]))
    if open(os.path.join(tmp, "a.npz"), "rb").read() != open(os.path.join(tmp, "b.npz"), "rb").read():
        fail("--run and the executable save different weights")


def test_precision_and_seed(nnc, tmp):
    run([nnc, "--precision=f64", XOR, "-o", "X64"], tmp)
    run(["./X64", "--epochs", "50", "--save", "w64.npz", "--quiet"], tmp)
    w = np.load(os.path.join(tmp, "w64.npz"))
    if any(w[k].dtype != np.float64 or w[k].shape != SHAPES[k] for k in w.files):
        fail(f"f64 weights: {[(k, w[k].dtype, w[k].shape) for k in w.files]}")
    blobs = []
    for name, seed in (("s1.npz", "5"), ("s2.npz", "5"), ("s3.npz", "6")):
        run(["./X", "--epochs", "30", "--seed", seed, "--save", name, "--quiet"], tmp)
        blobs.append(open(os.path.join(tmp, name), "rb").read())
    if blobs[0] != blobs[1]:
        fail("the same seed gave different .npz bytes")
    if blobs[0] == blobs[2]:
        fail("another seed gave the same weights")


def test_evaluate_only(nnc, tmp):
    with open(os.path.join(tmp, "test.csv"), "w") as f:
        f.write("0,0,0\n0,1,1\n1,0,1\n1,1,0\n0.5,0.5,1\n")
    args = ["--epochs", "0", "--load", "trained.npz", "--test", "test.csv", "--batch", "2"]
    exe = losses(text(run(["./X"] + args, tmp)))
    ref = losses(text(run([nnc, "--interp", XOR, "--"] + args, tmp)))
    test_lines = [l for l in exe if l.startswith("test:")]
    if not test_lines:
        fail(f"no 'test:' line from evaluation:\n{exe}")
    got = [float(x) for x in re.findall(r"\d+\.\d+", test_lines[0])]
    want = [float(x) for x in re.findall(r"\d+\.\d+", [l for l in ref if l.startswith("test:")][0])]
    if not np.allclose(got, want, rtol=1e-4, atol=2e-6):
        fail(f"evaluation differs from the interpreter: {test_lines[0]} vs {want}")


def test_emit_kinds(nnc, tmp):
    ll = text(run([nnc, "--emit=llvm", XOR], tmp))
    for want in (r"@nnc_model = .*constant", r"define internal void @nnc_train", r"@nnc_evaluate"):
        if not re.search(want, ll):
            fail(f"--emit=llvm lacks '{want}'")
    run([nnc, "--emit=llvm", "-O0", XOR, "-o", "x.ll"], tmp)
    if "@nnc_step" not in open(os.path.join(tmp, "x.ll")).read():
        fail("--emit=llvm -o x.ll did not write the module")
    asm = text(run([nnc, "--emit=asm", XOR], tmp))
    if not re.search(r"^nnc_model:", asm, re.M):
        fail("--emit=asm lacks the nnc_model label")
    run([nnc, "--emit=obj", XOR], tmp)
    obj = open(os.path.join(tmp, "xor.o"), "rb").read()
    if not obj.startswith(b"\x7fELF") or b"nnc_model" not in obj or b"nnc_rt_batch" not in obj:
        fail("--emit=obj did not write an ELF object defining nnc_model as xor.o")
    run([nnc, "--emit=exe", XOR], tmp)
    if not os.access(os.path.join(tmp, "xor"), os.X_OK):
        fail("--emit=exe did not write ./xor")
    for level in ("-O0", "-O1", "-O3"):
        run([nnc, level, XOR, "-o", "XO"], tmp)
        if final_loss(text(run(["./XO", "--quiet", "--epochs", "3000"], tmp))) >= 0.01:
            fail(f"xor built with {level} does not train")
    leftovers = [f for f in os.listdir(tmp) if ".tmp" in f]
    if leftovers:
        fail(f"temporary files left behind: {leftovers}")


def test_unwritable(nnc, tmp):
    for kind in ("obj", "exe", "llvm", "asm"):
        out = os.path.join(tmp, "no_such_dir", "out")
        p = run([nnc, "--emit=" + kind, XOR, "-o", out], tmp, code=1)
        err = p.stderr
        if not err.startswith("nnc: error:"):
            fail(f"--emit={kind} to a missing folder: stderr is {err!r}")
    if os.path.exists(os.path.join(tmp, "no_such_dir")):
        fail("a missing output folder was created")


AE = """model ae {
    input x[4]
    param W1[2, 4] = uniform(-0.5, 0.5)
    param W2[4, 2] = uniform(-0.5, 0.5)
    h = tanh(W1 @ x)
    y = W2 @ h
    output y
    loss = mean((y - x)^2)
}
train ae {
    data = csv("ae.csv")
    epochs = 2
    batch = 2
    optimizer = sgd(lr = 0.1)
}
"""


def test_targetless_loss(nnc, tmp):
    x = np.array([[0, 1, 0, 1], [1, 0, 1, 0], [0.5, 0.5, 0, 1]])
    np.savetxt(os.path.join(tmp, "ae.csv"), x, delimiter=",", fmt="%g")
    with open(os.path.join(tmp, "ae.nn"), "w") as f:
        f.write(AE)
    run([nnc, "ae.nn", "-o", "AE"], tmp)
    out = text(run(["./AE", "--test", "ae.csv", "--save", "ae.npz"], tmp))
    w = np.load(os.path.join(tmp, "ae.npz"))
    y = np.tanh(x @ w["W1"].T.astype(np.float64)) @ w["W2"].T.astype(np.float64)
    want = np.mean((y - x) ** 2)
    for what in ("train", "test"):
        m = re.search(rf"^{what}: loss (\S+)", out, re.M)
        if not m or not np.isclose(float(m.group(1)), want, rtol=1e-4):
            fail(f"autoencoder {what} loss: want {want:.6f} in:\n{out}")


def test_shared_kernels(nnc, tmp):
    layers = "".join(f"    h{i} = dense(h{i - 1}, 24, relu)\n" for i in range(1, 13))
    src = ("model stack {\n    input x[24]\n    target t[24]\n    h0 = x * 1\n" + layers +
           "    loss = mse(h12, t)\n}\ntrain stack {\n    data = csv(\"d.csv\")\n"
           "    batch = 5\n    epochs = 2\n    optimizer = adam(lr = 0.01)\n}\n")
    with open(os.path.join(tmp, "stack.nn"), "w") as f:
        f.write(src)
    rng = np.random.default_rng(3)
    np.savetxt(os.path.join(tmp, "d.csv"), rng.uniform(-1, 1, size=(13, 48)), delimiter=",", fmt="%.17g")
    ll = text(run([nnc, "--emit=llvm", "--precision=f64", "stack.nn"], tmp))
    kernels = re.findall(r"^define internal void @nnc_(?:step|forward)\.", ll, re.M)
    if not 0 < len(kernels) <= 8:
        fail(f"{len(kernels)} product kernels for 12 equal layers (36 products)")
    run([nnc, "--precision=f64", "stack.nn", "-o", "stack"], tmp)
    run(["./stack", "--save", "s.npz", "--quiet"], tmp)
    run([nnc, "--interp", "--precision=f64", "stack.nn", "--", "--save", "r.npz", "--quiet"], tmp)
    got, want = np.load(os.path.join(tmp, "s.npz")), np.load(os.path.join(tmp, "r.npz"))
    for k in want.files:
        if not np.allclose(got[k], want[k], rtol=1e-9, atol=1e-12):
            fail(f"stack: {k} differs from the interpreter")


CNN = """model cnn {
    input  x[2, 6, 6]
    target t[3]
    c = conv(x, 8, 3, relu, padding = 1)
    p = maxpool(c, 2)
    h = dense(flatten(p), 12, relu)
    z = dense(h, 3)
    loss = cross_entropy(softmax(z), t)
}
train cnn {
    data = csv("c.csv")
    batch = 4
    epochs = 2
    optimizer = adam(lr = 0.01)
}
"""


def test_two_halves(nnc, tmp):
    if sanitized():
        return  # every compile of the sanitized suite goes through the cut; this is about bits
    test_shared_kernels(nnc, tmp)  # writes stack.nn and d.csv
    with open(os.path.join(tmp, "cnn.nn"), "w") as f:
        f.write(CNN)
    rng = np.random.default_rng(5)
    rows = np.hstack([rng.uniform(0, 1, size=(11, 72)), np.eye(3)[rng.integers(0, 3, 11)]])
    np.savetxt(os.path.join(tmp, "c.csv"), rows, delimiter=",", fmt="%.17g")
    one = dict(os.environ, NNC_COMPILE_THREADS="1")
    for model in ("stack", "cnn"):
        run([nnc, model + ".nn", "-o", model + "2"], tmp)
        run([nnc, model + ".nn", "-o", model + "1"], tmp, env=one)
        exes = [open(os.path.join(tmp, model + k), "rb").read() for k in ("1", "2")]
        if exes[0] == exes[1]:
            fail(f"{model}: the two-thread build is the one-thread build (no cut)")
        for k in ("1", "2"):
            run(["./" + model + k, "--save", k + ".npz", "--quiet"], tmp)
        run([nnc, "--run", model + ".nn", "--", "--save", "j.npz", "--quiet"], tmp)
        saved = [open(os.path.join(tmp, k + ".npz"), "rb").read() for k in ("1", "2", "j")]
        if saved[0] != saved[1] or saved[0] != saved[2]:
            fail(f"{model}: the one-thread, two-thread and --run builds save different weights")
    test_checked_half(nnc, tmp, one)


CHAIN = """model chainnan {
    input x[2]
    target t[2]
    param w[2] = ones
    h0 = log(w * x)
BODY    loss = mse(hN, t)
}
train chainnan {
    data = csv("n.csv")
    epochs = 2
    batch = 4
    optimizer = sgd(lr = 0.01)
}
"""


def test_checked_half(nnc, tmp, one):
    n = 300
    body = "".join(f"    h{i} = h{i - 1} * 0.5 + x\n" for i in range(1, n + 1))
    with open(os.path.join(tmp, "chain.nn"), "w") as f:
        f.write(CHAIN.replace("BODY", body).replace("hN", f"h{n}"))
    rows = np.random.default_rng(6).uniform(0.1, 1, size=(16, 4))
    rows[9, 0] = -1  # log of a negative: the checked step runs in the third batch
    np.savetxt(os.path.join(tmp, "n.csv"), rows, delimiter=",", fmt="%.6f")
    outs = []
    for k, env in (("1", one), ("2", None)):
        run([nnc, "chain.nn", "-o", "chain" + k], tmp, env=env)
        p = run(["./chain" + k, "--quiet", "--save", "c" + k + ".npz"], tmp, code=1)
        outs.append((p.stdout, p.stderr.replace("c" + k + ".npz", "C.npz"),
                     open(os.path.join(tmp, "c" + k + ".npz"), "rb").read()))
    if open(os.path.join(tmp, "chain1"), "rb").read() == open(os.path.join(tmp, "chain2"), "rb").read():
        fail("the chain: the two-thread build is the one-thread build (no cut)")
    if "first non-finite value: log(" not in outs[1][1]:
        fail("the chain's checked step does not name the log:\n" + outs[1][1])
    if outs[0] != outs[1]:
        fail(f"the chain: the one-thread and two-thread builds differ:\n{outs[0][1]}\n{outs[1][1]}")


if __name__ == "__main__":
    main("nnc-codegen-", [test_xor_trains, test_run_matches_exe, test_precision_and_seed,
                          test_evaluate_only, test_emit_kinds, test_unwritable,
                          test_targetless_loss, test_shared_kernels, test_two_halves])
