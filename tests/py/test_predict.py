#!/usr/bin/python3
"""./MODEL --predict SRC [--load W.npz] [--out FILE.csv] (spec section 11).

The predictions equal a NumPy forward pass from the saved .npz (f32: 1e-5, f64: 1e-12) for
xor (inline data: a csv without header, with or without targets), spirals (csv with header
and class labels) and the Fashion-MNIST MLP (idx: images alone, or images and labels); the
class column is the argmax, or y > 0.5 for one output. Errors: no weights, bad rows (the
same file:row messages as training data), --out without --predict, an unwritable --out;
a failed run leaves --out as it was. --version prints one line and writes nothing.
idx images are read in pieces of 1024: fewer than a piece, a multiple and not, gzipped or
not, give the rows of the whole set's prediction; a file cut short or too long, or a label
out of range, found after the last piece, still leaves no --out behind. csv rows too are
parsed in pieces: a bad row in a later piece gets its line number, and no --out. f32 values are
written as C's "%.9g" (made without printf: compared field by field with Python's).
"""
import csv
import gzip
import io
import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nnctest import fail, main, run, sanitized  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(ROOT, "examples")
FASHION = "/usr/share/datasets/fashion-mnist"


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def dense(w, name, x, act=None):
    y = x @ w[name + ".W"].astype(np.float64).T + w[name + ".b"].astype(np.float64)
    return act(y) if act else y


def xor_forward(w, x):
    h = sigmoid(x @ w["W1"].astype(np.float64).T + w["b1"])
    return sigmoid(h @ w["W2"].astype(np.float64).T + w["b2"])


def spirals_forward(w, x):
    h = dense(w, "h1", x, np.tanh)
    return softmax(dense(w, "z", dense(w, "h2", h, np.tanh)))


def fashion_forward(w, x):
    relu = lambda v: np.maximum(v, 0)  # noqa: E731
    h = dense(w, "h2", dense(w, "h1", x, relu), relu)
    return softmax(dense(w, "z", h))


def read_csv(text):
    rows = list(csv.reader(io.StringIO(text)))
    return rows[0], np.array([[float(v) for v in r] for r in rows[1:]])


def check(text, want, classes, tol, what):
    """The csv's header, class column and values against the reference predictions."""
    header, got = read_csv(text)
    k = want.shape[1]
    expect = (["class"] if classes else []) + [f"y{i}" for i in range(k)]
    if header != expect:
        fail(f"{what}: header {header}, expected {expect}")
    if got.shape != (want.shape[0], len(expect)):
        fail(f"{what}: {got.shape} values, expected {(want.shape[0], len(expect))}")
    if tol >= 1e-9:  # f32: "%.9g" (f64's "%.17g" is printf's own)
        for row in text.splitlines()[1:]:
            for v in row.split(",")[1 if classes else 0:]:
                if v != "%.9g" % np.float32(float(v)):
                    fail(f"{what}: {v!r} is not %.9g of the f32 {np.float32(float(v))!r}")
    y = got[:, 1:] if classes else got
    err = np.max(np.abs(y - want) / np.maximum(1, np.abs(want)))
    if err > tol:
        fail(f"{what}: predictions differ from NumPy's by {err:g} (tolerance {tol:g})")
    if classes:
        cls = (want[:, 0] > 0.5).astype(int) if k == 1 else np.argmax(y, axis=1)
        if not np.array_equal(got[:, 0].astype(int), cls):
            fail(f"{what}: class column is not the argmax / threshold of the outputs")


def build(nnc, tmp, name, *flags):
    exe = os.path.join(tmp, name)
    run([nnc, os.path.join(EXAMPLES, name + ".nn"), "-o", exe, *flags], tmp)
    return exe


def write(tmp, name, text):
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def test_xor(nnc, tmp):
    for prec, tol in (("f32", 1e-5), ("f64", 1e-12)):
        exe = build(nnc, tmp, "xor", f"--precision={prec}")
        run([exe, "--quiet"], tmp)  # saves xor.npz in tmp: --predict's default weights
        w = np.load(os.path.join(tmp, "xor.npz"))
        x = np.array([[0, 0], [0, 1], [1, 0], [1, 1], [0.25, 0.5]])
        want = xor_forward(w, x)
        alone = write(tmp, "x.csv", "\n".join(f"{a},{b}" for a, b in x) + "\n")
        check(run([exe, "--predict", alone], tmp).stdout, want, True, tol, f"xor {prec}")
        both = write(tmp, "xt.csv", "0,0,0\n0,1,1\n\n1,0,1\n1,1,0\n0.25,0.5,1\n")
        out = os.path.join(tmp, "p.csv")
        p = run([exe, "--predict", both, "--out", out], tmp)
        if p.stdout or p.stderr:
            fail(f"xor --out printed {p.stdout!r} {p.stderr!r}")
        with open(out) as f:
            check(f.read(), want, True, tol, f"xor {prec} with targets, --out")


def test_digits(nnc, tmp):
    """f32 outputs from 1 down to the subnormals, in both of "%g"'s styles: xor with weights
    that make its output sigmoid(200 sigmoid(x0) - 100)."""
    sub = os.path.join(tmp, "digits")
    os.mkdir(sub)
    exe = build(nnc, sub, "xor")
    npz = os.path.join(sub, "w.npz")
    w = {"W1": np.array([[1, 0]] * 4, np.float32), "b1": np.zeros(4, np.float32),
         "W2": np.full((1, 4), 50, np.float32), "b2": np.array([-100], np.float32)}
    np.savez(npz, **w)
    x = np.array([[v, 0] for v in np.linspace(-7, 7, 2801)], np.float32).astype(np.float64)
    src = write(sub, "x.csv", "".join("%.9g,0\n" % v for v in x[:, 0]))
    text = run([exe, "--predict", src, "--load", npz], sub).stdout
    for style in ("e-", "e-4", ",0.000", "0.9999", "\n1,1\n"):
        if style not in text:
            fail(f"xor with steep weights: no output like {style!r}")
    check(text, xor_forward(w, x), True, 1e-5, "xor with steep weights")


def test_spirals(nnc, tmp):
    exe = build(nnc, tmp, "spirals")
    npz = os.path.join(tmp, "sp.npz")
    run([exe, "--quiet", "--epochs", "20", "--save", npz], tmp)
    w = np.load(npz)
    test = os.path.join(EXAMPLES, "data", "spirals_test.csv")
    data = np.loadtxt(test, delimiter=",", skiprows=1)
    want = spirals_forward(w, data[:, :2].astype(np.float32).astype(np.float64))
    p = run([exe, "--predict", test, "--load", npz], tmp)
    check(p.stdout, want, True, 1e-5, "spirals, csv with labels")
    lines = open(test).read().splitlines()
    alone = write(tmp, "sp_in.csv", "\n".join([lines[0]] + [",".join(r.split(",")[:2]) for r in lines[1:]]) + "\n")
    check(run([exe, "--predict", alone, "--load", npz], tmp).stdout, want, True, 1e-5,
          "spirals, inputs alone")


def test_csv_pieces(nnc, tmp):
    sub = os.path.join(tmp, "csvpieces")
    os.mkdir(sub)
    exe = build(nnc, sub, "spirals")
    npz = os.path.join(sub, "sp.npz")
    run([exe, "--quiet", "--epochs", "2", "--save", npz], sub)
    lines = open(os.path.join(EXAMPLES, "data", "spirals_test.csv")).read().splitlines()
    rows = lines[1:]
    one = run([exe, "--predict", write(sub, "one.csv", "\n".join(lines) + "\n"), "--load", npz],
              sub).stdout.splitlines()
    for n in (1024, 2048, 2600):
        # blank lines here and there: rows, not lines, make the pieces
        body = [rows[i % len(rows)] + ("\n" if i % 97 == 5 else "") for i in range(n)]
        for inputs_alone in (False, True):
            text = [lines[0]] + [",".join(r.split(",")[:2]) + r[len(r.rstrip("\n")):] if inputs_alone else r
                                 for r in body]
            src = write(sub, "big.csv", "\n".join(text) + "\n")
            got = run([exe, "--predict", src, "--load", npz], sub).stdout.splitlines()
            want = one[:1] + [one[1 + i % len(rows)] for i in range(n)]
            if got != want:
                fail(f"spirals, {n} rows (inputs alone: {inputs_alone}): rows differ from one by one")
    out = os.path.join(sub, "p.csv")
    text = [lines[0]] + [rows[i % len(rows)] for i in range(2600)]
    text[2301] = "0.5,x,1"
    bad = write(sub, "bad.csv", "\n".join(text) + "\n")
    expect_error(exe, sub, ["--predict", bad, "--load", npz, "--out", out],
                 f"{bad}:2302: error: bad number 'x' in column 2", out)


def idx_images(path):
    with gzip.open(path) as f:
        raw = f.read()
    n = int.from_bytes(raw[4:8], "big")
    return np.frombuffer(raw, np.uint8, offset=16).reshape(n, 784)


def test_fashion(nnc, tmp):
    images = f"{FASHION}/t10k-images-idx3-ubyte.gz"
    labels = f"{FASHION}/t10k-labels-idx1-ubyte.gz"
    if not os.path.exists(images):
        fail(f"{images} is missing (Debian: dataset-fashion-mnist)")
    exe = build(nnc, tmp, "fashion_mlp")
    npz = os.path.join(tmp, "fm.npz")
    run([exe, "--epochs", "0", "--save", npz], tmp)  # the initial weights, saved
    w = np.load(npz)
    x = (idx_images(images) / 255.0).astype(np.float32).astype(np.float64)
    want = fashion_forward(w, x)
    check(run([exe, "--predict", images, "--load", npz], tmp).stdout, want, True, 1e-5,
          "fashion_mlp, images alone")
    out = os.path.join(tmp, "fm.csv")
    run([exe, "--predict", f"{images},{labels}", "--load", npz, "--out", out, "--threads", "1"], tmp)
    with open(out) as f:
        check(f.read(), want, True, 1e-5, "fashion_mlp, images and labels, 1 thread")


def idx_file(path, images, gz, count=None, extra=b""):
    """images (uint8, n x 784) as an IDX file; count: the header's, if not len(images)."""
    head = bytes([0, 0, 8, 3]) + b"".join(int(v).to_bytes(4, "big") for v in
                                          (len(images) if count is None else count, 28, 28))
    data = head + images.tobytes() + extra
    with (gzip.open(path, "wb") if gz else open(path, "wb")) as f:
        f.write(data)
    return path


def test_idx_pieces(nnc, tmp):
    images = f"{FASHION}/t10k-images-idx3-ubyte.gz"
    if not os.path.exists(images):
        fail(f"{images} is missing (Debian: dataset-fashion-mnist)")
    sub = os.path.join(tmp, "pieces")
    os.mkdir(sub)
    exe = build(nnc, sub, "fashion_mlp")
    npz = os.path.join(sub, "fm.npz")
    run([exe, "--epochs", "0", "--save", npz], sub)
    w = np.load(npz)
    x = idx_images(images)
    whole = run([exe, "--predict", images, "--load", npz], sub).stdout.splitlines()
    for n, gz in ((5, True), (1024, False), (2048, True), (2500, False), (3000, True)):
        path = idx_file(os.path.join(sub, f"i{n}"), x[:n], gz)
        for threads in ("1", "2"):
            got = run([exe, "--predict", path, "--load", npz, "--threads", threads], sub).stdout
            if got.splitlines() != whole[:n + 1]:
                fail(f"{n} images (gz {gz}, {threads} threads): rows differ from the whole set's")
        want = fashion_forward(w, (x[:n] / 255.0).astype(np.float32).astype(np.float64))
        check(got, want, True, 1e-5, f"fashion_mlp, {n} images")
    lab = os.path.join(sub, "lab")
    with open(lab, "wb") as f:
        f.write(bytes([0, 0, 8, 1]) + (2500).to_bytes(4, "big") + bytes([3] * 2499 + [10]))
    out = os.path.join(sub, "p.csv")
    ok = os.path.join(sub, "i2500")
    for gz in (False, True):
        cut = idx_file(os.path.join(sub, "cut"), x[:2400], gz, count=2500)
        expect_error(exe, sub, ["--predict", cut, "--load", npz, "--out", out],
                     f"{cut}: error: offset 1881616: the file ends before the 1960000 bytes of data "
                     "its header promises (2500x28x28)", out)
        long = idx_file(os.path.join(sub, "long"), x[:2500], gz, extra=b"xyz")
        expect_error(exe, sub, ["--predict", long, "--load", npz, "--out", out],
                     f"{long}: error: offset 1960016: 3 bytes follow the data the header describes", out)
    gzcut = os.path.join(sub, "gzcut")
    with open(os.path.join(sub, "i3000"), "rb") as f, open(gzcut, "wb") as g:
        g.write(f.read()[:-100])
    expect_error(exe, sub, ["--predict", gzcut, "--load", npz, "--out", out], "cut short", out)
    expect_error(exe, sub, ["--predict", f"{ok},{lab}", "--load", npz, "--out", out],
                 f"{lab}: error: offset 2507: label 10 of sample 2500 is out of range 0..9", out)
    # memory: a piece of inputs, not the set (60 000 images: 188 MB as f32 reals); not
    # under the sanitizers, whose shadow memory says nothing of the runtime's own
    if sanitized():
        return
    train = f"{FASHION}/train-images-idx3-ubyte.gz"
    peak = peak_rss([exe, "--predict", train, "--load", npz, "--out", os.devnull], sub)
    if peak > 100 << 20:
        fail(f"--predict of 60 000 images: max RSS {peak >> 20} MB, expected at most 100")


def peak_rss(cmd, cwd):
    """The peak RSS in bytes of cmd (its VmHWM, read until it exits)."""
    p = subprocess.Popen(cmd, cwd=cwd)
    peak = 0
    while p.poll() is None:
        try:
            with open(f"/proc/{p.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]) << 10)
        except OSError:
            pass
        time.sleep(0.005)
    if p.returncode != 0:
        fail(f"{' '.join(cmd)} exited {p.returncode}")
    return peak


def expect_error(exe, tmp, args, message, out=None, before=None):
    p = run([exe, *args], tmp, code=1)
    if message not in p.stderr:
        fail(f"{' '.join(args)}: expected {message!r} in:\n{p.stderr}")
    if p.stdout:
        fail(f"{' '.join(args)}: printed {p.stdout!r} on an error")
    if out and before is None and os.path.exists(out):
        fail(f"{' '.join(args)}: left {out} behind")
    if out and before is not None and open(out).read() != before:
        fail(f"{' '.join(args)}: changed {out}")


def test_errors(nnc, tmp):
    sub = os.path.join(tmp, "errors")
    os.mkdir(sub)
    exe = build(nnc, sub, "xor")
    good = write(sub, "good.csv", "0,0\n1,1\n")
    out = os.path.join(sub, "out.csv")
    expect_error(exe, sub, ["--predict", good, "--out", out], "xor.npz does not exist", out)
    run([exe, "--quiet", "--epochs", "10"], sub)
    bad = write(sub, "bad.csv", "0,0\n1,x\n")
    expect_error(exe, sub, ["--predict", bad, "--out", out], f"{bad}:2: error: bad number 'x' in column 2", out)
    short = write(sub, "short.csv", "0,0\n1\n")
    expect_error(exe, sub, ["--predict", short], f"{short}:2: error: expected 2 values")
    expect_error(exe, sub, ["--predict", os.path.join(sub, "none.csv")], "none.csv")
    expect_error(exe, sub, ["--out", out], "--out is where --predict writes", out)
    expect_error(exe, sub, ["--predict", good, "--out", os.path.join(sub, "no", "x.csv")], "cannot write")
    expect_error(exe, sub, ["--predict", good, "--load", os.path.join(sub, "none.npz")], "none.npz")
    write(sub, "out.csv", "old\n")
    expect_error(exe, sub, ["--predict", bad, "--out", out], "bad number", out, before="old\n")
    run([exe, "--predict", good, "--out", out], sub)
    if not open(out).read().startswith("class,y0\n"):
        fail("--out did not replace the old file")
    leftovers = [f for f in os.listdir(sub) if ".tmp" in f]
    if leftovers:
        fail(f"temporaries left behind: {leftovers}")


def test_version(nnc, tmp):
    sub = os.path.join(tmp, "version")
    os.mkdir(sub)
    exe = build(nnc, sub, "xor", "--precision=f64")
    p = run([exe, "--version"], sub)
    if p.stdout.count("\n") != 1 or "xor" not in p.stdout or "f64" not in p.stdout or "nnc" not in p.stdout:
        fail(f"--version printed {p.stdout!r}")
    if sorted(os.listdir(sub)) != ["xor"]:
        fail(f"--version wrote files: {os.listdir(sub)}")
    h = run([exe, "--help"], sub).stdout
    if "--predict" not in h or "--out" not in h or "--version" not in h:
        fail("--help does not list --predict, --out and --version")


if __name__ == "__main__":
    main("nnc-predict-", [test_xor, test_digits, test_spirals, test_csv_pieces, test_fashion, test_idx_pieces, test_errors, test_version])
