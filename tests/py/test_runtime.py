"""test_runtime.py - the runtime library (spec sections 7 and 8) through the fake models of
tests/runtime/fake_linear.c, hand-written stand-ins for generated code, built into
BUILD/tests/runtime/. Run: /usr/bin/python3 test_runtime.py --nnc NNC --build BUILD"""
import argparse
import gzip
import io
import os
import re
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
import zlib

import numpy as np

FAILS = []
BIN = None
OR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1], [1, 1]], float)
OR_T = np.array([[0], [1], [1], [1], [1]], float)


def check(cond, what):
    if not cond:
        FAILS.append(what)
        print("FAIL:", what)


def run(model, *args, cwd, **kw):
    p = subprocess.run([os.path.join(BIN, model), *args], cwd=cwd, capture_output=True,
                       text=True, timeout=120, **kw)
    return p.returncode, p.stdout, p.stderr


def ok(model, *args, cwd):
    rc, out, err = run(model, *args, cwd=cwd)
    check(rc == 0, f"{model} {' '.join(args)}: exit {rc}, stderr {err!r}")
    return out


def epoch_losses(out):
    return [float(m) for m in re.findall(r"^epoch \d+ +loss ([0-9.]+)", out, re.M)]


def final(out, which):
    m = re.search(rf"^{which}: loss ([0-9.]+)(?: acc ([0-9.]+)%)?$", out, re.M)
    if not m:
        return None, None
    return float(m.group(1)), (float(m.group(2)) if m.group(2) else None)


def logic_forward(w, x, t):
    """The fake LOGIC model in numpy: per-sample bce losses and the mean gradients."""
    u = x @ w["W"].astype(float).T + w["h.b"].astype(float)
    s = float(w["s"])
    p = 1 / (1 + np.exp(-s * u))
    loss = -(t * np.log(p) + (1 - t) * np.log(1 - p)).mean(axis=1)
    dz = p - t
    grads = {"W": (dz * s).T @ x / len(x), "h.b": (dz * s).mean(axis=0),
             "s": (dz * u).sum(axis=1).mean()}
    return loss, grads


# ---- data files the tests write ----

def write_reg(folder, n=64, seed=0, name="lin.csv"):
    rng = np.random.RandomState(seed)
    x = rng.uniform(-1, 1, (n, 3))
    t = x @ np.array([[1.0, -2.0, 0.5], [0.3, 0.0, -1.0]]).T + np.array([0.5, -0.25])
    with open(os.path.join(folder, name), "w") as f:
        f.write("a,b,c,t1,t2\n")
        for row in np.hstack([x, t]):
            f.write(",".join(f"{v:.6f}" for v in row) + "\n")


def cls_data(n=90, seed=1):
    """Three well separated classes of 2x2 'images' with pixel values in [0, 1]."""
    rng = np.random.RandomState(seed)
    labels = np.arange(n) % 3
    centres = np.array([[0.9, 0.1, 0.1, 0.9], [0.1, 0.9, 0.9, 0.1], [0.9, 0.9, 0.1, 0.1]])
    x = np.clip(centres[labels] + rng.uniform(-0.1, 0.1, (n, 4)), 0, 1)
    return x, labels


def write_cls_csv(folder, name="cls.csv"):
    x, labels = cls_data()
    with open(os.path.join(folder, name), "w") as f:
        for row, k in zip(x, labels):
            f.write(",".join(f"{v:.4f}" for v in row) + f",{k}\n")


def idx_bytes(arr, dims):
    return bytes([0, 0, 8, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + arr.tobytes()


def write_idx(folder, img="img.idx.gz", lab="lab.idx", gz_images=True, gz_labels=False):
    x, labels = cls_data()
    pixels = np.round(x * 255).astype(np.uint8)
    data = {img: (idx_bytes(pixels, [len(x), 2, 2]), gz_images),
            lab: (idx_bytes(labels.astype(np.uint8), [len(x)]), gz_labels)}
    for name, (b, gz) in data.items():
        with open(os.path.join(folder, name), "wb") as f:
            f.write(gzip.compress(b, mtime=0) if gz else b)
    return pixels, labels


# ---- the tests ----

def test_train_and_npz(d):
    out = ok("logic", cwd=d)
    losses = epoch_losses(out)
    check(len(losses) == 40, f"one line per epoch: {len(losses)}")
    check(losses[-1] < 0.5 * losses[0], f"loss falls: {losses[0]} -> {losses[-1]}")
    check(re.search(r"^epoch 1 +loss [0-9.]+ +acc [0-9.]+% .*samples/s$", out, re.M),
          "epoch line format")
    loss, acc = final(out, "train")
    check(acc == 100.0, f"train accuracy {acc}")
    w = np.load(os.path.join(d, "logic.npz"))
    check(sorted(w.files) == ["W", "h.b", "s"], f"npz keys {w.files}")
    check(w["W"].shape == (1, 2) and w["h.b"].shape == (1,) and w["s"].shape == (),
          "npz shapes")
    check(all(w[k].dtype == np.float32 for k in w.files), "f32 build saves float32")
    per_sample, _ = logic_forward(w, OR_X, OR_T)
    check(abs(per_sample.mean() - loss) < 1e-5,
          f"final train loss {loss} is the saved weights' mean loss {per_sample.mean()}")
    with zipfile.ZipFile(os.path.join(d, "logic.npz")) as z:
        check(z.testzip() is None and sorted(z.namelist()) == ["W.npy", "h.b.npy", "s.npy"],
              "zip entries and CRCs")
    check(not [f for f in os.listdir(d) if ".tmp" in f], "no temporary left behind")


def test_determinism(d):
    a, b, c = (os.path.join(d, n) for n in ("a", "b", "c"))
    for f in (a, b, c):
        os.mkdir(f)
    for f in (a, b):
        os.mkdir(os.path.join(f, "data"))
        write_reg(os.path.join(f, "data"))
        write_reg(os.path.join(f, "data"), seed=3, name="lin_test.csv")
        ok("reg", "--quiet", cwd=f)
        ok("logic", "--quiet", cwd=f)
    for m in ("reg.npz", "logic.npz"):
        same = open(os.path.join(a, m), "rb").read() == open(os.path.join(b, m), "rb").read()
        check(same, f"same seed, identical {m} bytes (shuffled training)")
    shutil.copytree(os.path.join(a, "data"), os.path.join(c, "data"))
    ok("reg", "--quiet", "--seed", "6", cwd=c)
    differ = open(os.path.join(a, "reg.npz"), "rb").read() != open(os.path.join(c, "reg.npz"), "rb").read()
    check(differ, "another seed, other weights")


def test_initial_weights(d):
    ok("logic", "--epochs", "0", cwd=d)
    w0 = dict(np.load(os.path.join(d, "logic.npz")))
    bound = np.sqrt(6 / 3)
    check(np.all(np.abs(w0["W"]) <= bound) and np.any(w0["W"] != 0), "xavier bound")
    check(np.all(w0["h.b"] == 0) and w0["s"] == 1, "zeros and ones")
    ok("logic", "--epochs", "0", "--batch", "1", "--lr", "3", "--save", "again.npz", cwd=d)
    check(open(os.path.join(d, "logic.npz"), "rb").read() == open(os.path.join(d, "again.npz"), "rb").read(),
          "initial weights depend on the seed only")
    ok("logic64", "--epochs", "0", cwd=d)
    w64 = np.load(os.path.join(d, "logic64.npz"))
    check(w64["W"].dtype == np.float64, "f64 build saves float64")
    check(np.array_equal(w64["W"].astype(np.float32), w0["W"]), "f32 weights are the f64 ones rounded")
    ok("logic", "--epochs", "0", "--seed", "2", "--save", "s2.npz", cwd=d)
    check(not np.array_equal(np.load(os.path.join(d, "s2.npz"))["W"], w0["W"]), "seed changes weights")


def test_load_resume(d):
    ok("logic", "--epochs", "0", "--save", "init.npz", cwd=d)
    trained = ok("logic", "--epochs", "20", "--save", "t20.npz", cwd=d)
    t_loss, _ = final(trained, "train")
    with open(os.path.join(d, "or.csv"), "w", encoding="utf-8-sig") as f:  # with a byte order mark
        for x, t in zip(OR_X, OR_T):
            f.write(f"{x[0]:g},{x[1]:g},{t[0]:g}\n")
    out = ok("logic", "--epochs", "0", "--load", "t20.npz", "--data", "or.csv", cwd=d)
    loss, acc = final(out, "train")
    check(loss is not None and abs(loss - t_loss) < 1e-6, f"--load gives back the weights: {loss} vs {t_loss}")
    check(not os.path.exists(os.path.join(d, "logic.npz")), "--epochs 0 --load saves nothing")
    resumed = ok("logic", "--epochs", "20", "--load", "t20.npz", "--save", "r.npz", cwd=d)
    fresh = ok("logic", "--epochs", "20", "--load", "init.npz", "--save", "f.npz", cwd=d)
    check(epoch_losses(resumed)[0] < epoch_losses(fresh)[0], "--load resumes from the trained weights")
    # either precision loads the other's files
    ok("logic64", "--epochs", "0", "--load", "t20.npz", "--save", "t20_64.npz", cwd=d)
    a, b = np.load(os.path.join(d, "t20.npz")), np.load(os.path.join(d, "t20_64.npz"))
    check(b["W"].dtype == np.float64 and np.array_equal(a["W"].astype(float), b["W"]), "f32 -> f64 load")
    np.savez_compressed(os.path.join(d, "np.npz"), W=np.array([[0.5, 1.5]]), s=np.float64(2),
                        **{"h.b": np.array([0.25])})
    ok("logic", "--epochs", "0", "--load", "np.npz", "--save", "np32.npz", cwd=d)
    c = np.load(os.path.join(d, "np32.npz"))
    check(c["W"].tolist() == [[0.5, 1.5]] and float(c["s"]) == 2.0 and c["h.b"].tolist() == [0.25],
          "numpy's compressed float64 npz loads")


def test_log(d):
    ok("logic", "--epochs", "0", "--save", "init.npz", cwd=d)
    ok("logic", "--epochs", "3", "--batch", "5", "--log", "run.csv", "--load", "init.npz", cwd=d)
    rows = open(os.path.join(d, "run.csv")).read().splitlines()
    check(rows[0] == "epoch,loss,acc,test_loss,test_acc,seconds,grad_norm:W,grad_norm:h.b,grad_norm:s,"
          "val_loss,val_acc,lr",
          f"log header {rows[0]}")
    check(len(rows) == 4, f"one row per epoch: {len(rows) - 1}")
    cells = rows[1].split(",")
    check(cells[0] == "1" and cells[3] == "" and cells[4] == "", f"log row {rows[1]}")
    w0 = np.load(os.path.join(d, "init.npz"))
    loss, grads = logic_forward(w0, OR_X, OR_T)
    check(abs(float(cells[1]) - loss.mean()) < 1e-5, f"log loss {cells[1]} vs {loss.mean()}")
    for k, name in enumerate(["W", "h.b", "s"]):
        norm = np.linalg.norm(grads[name])
        check(abs(float(cells[6 + k]) - norm) < 1e-5 * max(1, norm), f"grad_norm:{name} {cells[6 + k]} vs {norm}")
    check(0 <= float(cells[2]) <= 100 and float(cells[5]) >= 0, "acc and seconds cells")


def setup_reg(d):
    os.makedirs(os.path.join(d, "data"), exist_ok=True)
    write_reg(os.path.join(d, "data"))
    write_reg(os.path.join(d, "data"), seed=3, n=20, name="lin_test.csv")


def test_csv(d):
    setup_reg(d)
    out = ok("reg", "--log", "reg.csv", cwd=d)
    losses = epoch_losses(out)
    check(losses and losses[-1] < 0.05 * losses[0], f"regression learns: {losses[:1]} -> {losses[-1:]}")
    check("acc" not in out, "no accuracy for regression")
    check(re.search(r"^epoch 1 .*test_loss [0-9.]+", out, re.M), "test loss at each epoch")
    test_loss, _ = final(out, "test")
    check(test_loss is not None and test_loss < 0.05, f"test line {test_loss}")
    rows = open(os.path.join(d, "reg.csv")).read().splitlines()
    cells = rows[-1].split(",")
    check(cells[2] == "" and cells[3] != "" and cells[4] == "", f"regression log row {rows[-1]}")
    shutil.copy(os.path.join(d, "reg.npz"), os.path.join(d, "w.npz"))
    os.remove(os.path.join(d, "reg.npz"))
    ev = ok("reg", "--epochs", "0", "--load", "w.npz", "--test", "data/lin_test.csv", cwd=d)
    check(final(ev, "test")[0] == test_loss and final(ev, "train")[0] is None,
          "--epochs 0 --load --test only evaluates")
    check(not os.path.exists(os.path.join(d, "reg.npz")), "... and saves nothing")
    write_reg(d, seed=9, name="other.csv")  # relative to the current folder, header kept
    out = ok("reg", "--data", "other.csv", "--epochs", "2", cwd=d)
    check(len(epoch_losses(out)) == 2, "--data overrides the csv path")
    write_cls_csv(d)
    out = ok("cls_csv", cwd=d)
    loss, acc = final(out, "train")
    check(acc is not None and acc > 95, f"csv labels one-hot: accuracy {acc}")


def test_idx(d):
    os.makedirs(os.path.join(d, "data"))
    write_idx(os.path.join(d, "data"))
    out = ok("cls", cwd=d)
    loss, acc = final(out, "train")
    check(acc is not None and acc > 95, f"idx training accuracy {acc}")
    check(re.search(r"^epoch 20 .*acc", out, re.M), "idx epoch lines with accuracy")
    write_idx(d, img="raw_img", lab="gz_lab.gz", gz_images=False, gz_labels=True)
    out = ok("cls", "--epochs", "0", "--load", "cls.npz", "--data", "raw_img,gz_lab.gz", cwd=d)
    check(final(out, "train") == (loss, acc), f"raw and gzipped IDX read alike: {final(out, 'train')}")


def bad(d, model, args, *needles, what):
    rc, out, err = run(model, *args, cwd=d)
    check(rc == 1, f"{what}: exit {rc}")
    for n in needles:
        check(n in err, f"{what}: {n!r} not in {err!r}")
    check("Traceback" not in err and "Sanitizer" not in err and "\x1b" not in err,
          f"{what}: clean failure")


def test_bad_data(d):
    setup_reg(d)
    lines = open(os.path.join(d, "data", "lin.csv")).read().splitlines()

    def csv_with(line_no, text):
        rows = list(lines)
        rows[line_no - 1] = text
        with open(os.path.join(d, "bad.csv"), "w") as f:
            f.write("\n".join(rows) + "\n")

    bad(d, "reg", ["--data", "nope.csv"], "nope.csv", "cannot open", what="missing file")
    os.rename(os.path.join(d, "data", "lin.csv"), os.path.join(d, "data", "x.csv"))
    bad(d, "reg", [], "data/lin.csv", what="missing file of the train block (base_dir)")
    os.rename(os.path.join(d, "data", "x.csv"), os.path.join(d, "data", "lin.csv"))
    csv_with(4, "1,2,3,4")
    bad(d, "reg", ["--data", "bad.csv"], "bad.csv:4:", "expected 5 values", "found 4", what="short row")
    csv_with(7, "1,2,3,4,5,6")
    bad(d, "reg", ["--data", "bad.csv"], "bad.csv:7:", "found 6", what="long row")
    csv_with(3, "1,2,abc,4,5")
    bad(d, "reg", ["--data", "bad.csv"], "bad.csv:3:", "bad number 'abc'", "column 3", what="bad number")
    csv_with(5, "1,2,,4,5")
    bad(d, "reg", ["--data", "bad.csv"], "bad.csv:5:", "missing value", what="empty cell")
    csv_with(6, "1,2,nan,4,5")
    bad(d, "reg", ["--data", "bad.csv"], "bad.csv:6:", "nan", what="non-finite number")
    with open(os.path.join(d, "empty.csv"), "w") as f:
        f.write("a,b,c,t1,t2\n")
    bad(d, "reg", ["--test", "empty.csv"], "empty.csv", "no samples", what="empty csv")
    with open(os.path.join(d, "cls.csv"), "w") as f:
        f.write("0.1,0.2,0.3,0.4,1\n0.1,0.2,0.3,0.4,2\n0.5,0.5,0.5,0.5,3\n")
    bad(d, "cls_csv", [], "cls.csv:3:", "label 3", "out of range 0..2", what="label out of range")
    with open(os.path.join(d, "cls.csv"), "w") as f:
        f.write("0.1,0.2,0.3,0.4,1.5\n")
    bad(d, "cls_csv", [], "cls.csv:1:", "not an integer", what="fractional label")

    pixels, labels = write_idx(d, img="i.gz", lab="l")
    good_img = open(os.path.join(d, "i.gz"), "rb").read()
    good_lab = open(os.path.join(d, "l"), "rb").read()
    with open(os.path.join(d, "bad_magic"), "wb") as f:
        f.write(b"\x00\x00\x09\x03" + gzip.decompress(good_img)[4:])
    bad(d, "cls", ["--data", "bad_magic,l"], "bad_magic", "offset 0", "magic", what="IDX magic")
    with open(os.path.join(d, "dims"), "wb") as f:
        f.write(idx_bytes(np.zeros((90, 3, 3), np.uint8), [90, 3, 3]))
    bad(d, "cls", ["--data", "dims,l"], "dims", "3x3 = 9", "input has 4", what="IDX dims")
    with open(os.path.join(d, "short"), "wb") as f:
        f.write(gzip.decompress(good_img)[:-7])
    bad(d, "cls", ["--data", "short,l"], "short", "offset", "ends before", what="truncated IDX")
    with open(os.path.join(d, "few"), "wb") as f:
        f.write(idx_bytes(labels[:80].astype(np.uint8), [80]))
    bad(d, "cls", ["--data", "i.gz,few"], "few", "80 labels", "90 images", what="IDX counts")
    lab = bytearray(good_lab)
    lab[8 + 41] = 7
    with open(os.path.join(d, "l7"), "wb") as f:
        f.write(lab)
    bad(d, "cls", ["--data", "i.gz,l7"], "l7", "offset 49", "label 7", "sample 42", what="IDX label range")
    bad(d, "cls", ["--data", "i.gz"], "IMAGES,LABELS", what="idx flag needs two files")


def test_data_limits(d):
    """A cut gzip stream, numbers beyond the model's reals and IDX dims that multiply to
    nonsense are errors with the right numbers."""
    setup_reg(d)
    rng = np.random.RandomState(4)
    rows = "a,b,c,t1,t2\n" + "".join(",".join(f"{v:.6f}" for v in r) + "\n"
                                     for r in rng.uniform(-1, 1, (256, 5)))
    z = gzip.compress(rows.encode(), mtime=0)

    def cut_mid_number(n):  # what zlib gives back of the first n bytes ends inside a last column
        text = zlib.decompressobj(31).decompress(z[:n]).decode()
        return text.count("\n") < 257 and len(text.rsplit("\n", 1)[-1].split(",")) == 5 \
            and text[-1] not in ",-."
    cut = next(n for n in range(len(z) * 7 // 8, 0, -1) if cut_mid_number(n))
    for name, data in (("full.csv.gz", z), ("cut.csv.gz", z[:cut])):
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
    ok("reg", "--data", "full.csv.gz", "--epochs", "1", cwd=d)
    bad(d, "reg", ["--data", "cut.csv.gz", "--epochs", "1"], "cut.csv.gz: error: ", "cut short",
        what="a truncated gzipped csv")

    def csv(name, text):
        with open(os.path.join(d, name), "w") as f:
            f.write(text)
    csv("big32.csv", "a,b,c,t1,t2\n1,2,3,4,5\n1,2,-3.5e38,4,5\n")
    bad(d, "reg", ["--data", "big32.csv"], "big32.csv:3: error: ", "'-3.5e38' in column 3",
        "beyond the range of f32", what="a number beyond f32")
    csv("fits32.csv", "a,b,c,t1,t2\n1,2,3.4e38,4,5\n")
    ok("reg", "--data", "fits32.csv", "--epochs", "0", "--save", "x.npz", cwd=d)
    csv("big64.csv", "1,2,1e39\n0,1,1e309\n")
    bad(d, "logic64", ["--data", "big64.csv"], "big64.csv:2: error: ", "'1e309' in column 3",
        "beyond the range of f64", what="a number beyond f64")

    csv("esc.csv", "a,b,c,t1,t2\n1,\x1b[31mred,3,4,5\n")
    bad(d, "reg", ["--data", "esc.csv"], "esc.csv:2: error: bad number '\\x1b[31mred' in column 2",
        what="control bytes of a file are escaped in messages")
    with open(os.path.join(d, "badgz.csv"), "wb") as f:
        f.write(b"\x1f\x8b\x09\x00junkjunkjunk")
    bad(d, "reg", ["--data", "badgz.csv"], "badgz.csv: error: cannot read: unknown compression method",
        what="zlib's message without its own file name")

    def idx(name, dims, data=b""):
        with open(os.path.join(d, name), "wb") as f:
            f.write(bytes([0, 0, 8, len(dims)]) + b"".join(struct.pack(">I", v) for v in dims) + data)
    idx("lab", [0])
    idx("none", [0, 28, 28])
    bad(d, "cls", ["--data", "none,lab"], "none: error: ", "28x28 = 784 values", "input has 4",
        what="IDX dims with no images")
    idx("wide", [3, 100000, 100000], b"\0" * 100)
    bad(d, "cls", ["--data", "wide,lab"], "wide: error: ", "the 30000000000 bytes of data",
        what="IDX size past the file")
    idx("huge", [2, 65536, 65536, 65536, 65536], b"\0" * 100)
    bad(d, "cls", ["--data", "huge,lab"], "huge: error: ", "more than 2^64", what="IDX size past 2^64")


def test_bad_npz(d):
    ok("logic", "--epochs", "0", cwd=d)
    good = dict(np.load(os.path.join(d, "logic.npz")))
    cases = [("shape.npz", dict(good, W=np.zeros((2, 1), np.float32)), ["W has shape (2, 1)", "(1, 2)"]),
             ("missing.npz", {k: v for k, v in good.items() if k != "s"}, ["no array 's'"]),
             ("extra.npz", dict(good, V=np.zeros(3, np.float32)), ["V.npy", "not a param"]),
             ("ints.npz", dict(good, W=np.zeros((1, 2), np.int32)), ["W.npy", "unsupported array type"])]
    for name, arrays, needles in cases:
        np.savez(os.path.join(d, name), **arrays)
        bad(d, "logic", ["--epochs", "0", "--load", name], name, *needles, what=f"--load {name}")
    with open(os.path.join(d, "junk.npz"), "wb") as f:
        f.write(b"not a zip at all, surely" * 4)
    bad(d, "logic", ["--epochs", "0", "--load", "junk.npz"], "junk.npz", what="--load junk")
    bad(d, "logic", ["--epochs", "0", "--load", "none.npz"], "none.npz", "cannot open", what="--load missing")
    bad(d, "logic", ["--log", "no/such/dir/l.csv"], "no/such/dir/l.csv", "cannot write", what="bad log path")
    bad(d, "logic", ["--save", "no/such/dir/w.npz"], "no/such/dir/w.npz", "cannot write", what="bad save path")
    check(not os.path.exists(os.path.join(d, "no")), "no partial output")


def npy(a):
    b = io.BytesIO()
    np.save(b, a)
    return b.getvalue()


def zip_bytes(entries, extra=b"", csize=None, size=None, offset=None, pad_to=0):
    """A stored zip of (name, data) entries like nnc's; the last central record gets `extra`
    and the given csize/size/offset fields. Bytes are put before the central directory to
    make the file pad_to long (so that a read past its end leaves the allocation)."""
    out, central = b"", b""
    for k, (name, data) in enumerate(entries):
        n, c = name.encode(), zlib.crc32(data)
        off = len(out)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0x21, c, len(data), len(data),
                           len(n), 0) + n + data
        last = k == len(entries) - 1
        x = extra if last else b""
        fields = [len(data), len(data), off]
        if last:
            fields = [v if o is None else o for v, o in zip(fields, (csize, size, offset))]
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 0, 0, 0x21, c,
                               fields[0], fields[1], len(n), len(x), 0, 0, 0, 0o644 << 16,
                               fields[2]) + n + x
    out += b"\0" * max(0, pad_to - len(out) - len(central) - 22)
    return out + central + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries),
                                       len(central), len(out), 0)


def logic_entries():
    return [("W.npy", npy(np.array([[0.5, -1.5]], np.float32))),
            ("h.b.npy", npy(np.array([0.25], np.float32))), ("s.npy", npy(np.float32(2)))]


def test_npz_hostile(d):
    """Zip fields that point outside the file, or past 2^64 when added, are errors."""
    z64 = bytearray(50)
    z64[8:28] = struct.pack("<IIQI", 0x07064B50, 0, 0x100000000000, 1)
    z64[28:50] = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0, 0xFFFFFFFF, 0)
    e = logic_entries()
    cases = [("z64_locator.npz", bytes(z64), ["zip64"]),
             ("long_extra.npz", zip_bytes(e, struct.pack("<HH", 1, 0xFFFF), 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF,
                                          pad_to=4096), ["offset"]),
             ("far_offset.npz", zip_bytes(e, struct.pack("<HHQ", 1, 8, 2**64 - 16), offset=0xFFFFFFFF),
              ["local file header"]),
             ("huge_entry.npz", zip_bytes(e, struct.pack("<HHQ", 1, 8, 0xFFFFFFFFFFFF), size=0xFFFFFFFF),
              ["s.npy", "281474976710655 bytes"]),
             ("cut.npz", zip_bytes(e)[:150], ["offset"]),
             ("esc.npz", zip_bytes(e[:2] + [("\x1b[2Js.npy", e[2][1])]), ["holds '\\x1b[2Js.npy'"]),
             ("good.npz", zip_bytes(e), None)]
    for name, data, needles in cases:
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
        if needles is None:
            out = ok("logic", "--epochs", "0", "--load", name, "--save", "back.npz", cwd=d)
            w = np.load(os.path.join(d, "back.npz"))
            check(w["W"].tolist() == [[0.5, -1.5]] and float(w["s"]) == 2, "the crafted zip loads")
        else:
            bad(d, "logic", ["--epochs", "0", "--load", name], name + ": error: ", *needles,
                what=f"--load {name}")


def test_npz_crc(d):
    """One flipped bit in a weight's data is found (numpy finds it too)."""
    ok("logic", "--epochs", "0", "--save", "w.npz", cwd=d)
    raw = bytearray(open(os.path.join(d, "w.npz"), "rb").read())
    with zipfile.ZipFile(os.path.join(d, "w.npz")) as z:
        info = z.getinfo("W.npy")
    last = info.header_offset + 30 + len(info.filename) + len(info.extra) + info.file_size - 1
    raw[last] ^= 0x10
    with open(os.path.join(d, "flip.npz"), "wb") as f:
        f.write(raw)
    with zipfile.ZipFile(os.path.join(d, "flip.npz")) as z:
        check(z.testzip() == "W.npy", "the flipped bit is in W.npy's data")
    bad(d, "logic", ["--epochs", "0", "--load", "flip.npz"], "flip.npz: error: W.npy: CRC mismatch",
        what="a flipped bit")


def feed_fifo(path, source):
    """A thread that writes `source` into the FIFO at path until the reader goes away."""
    def feed():
        try:
            with open(path, "wb") as f, open(source, "rb") as src:
                while f.write(src.read(1 << 16)):
                    pass
        except (BrokenPipeError, OSError):
            pass
    os.mkfifo(path)
    t = threading.Thread(target=feed, daemon=True)
    t.start()
    return t


def test_unending_files(d):
    """Devices that never end are refused; a pipe is read, up to a limit."""
    setup_reg(d)
    bad(d, "logic", ["--epochs", "0", "--load", "/dev/zero"], "/dev/zero: error: ",
        "character device", what="--load /dev/zero")
    bad(d, "reg", ["--data", "/dev/zero"], "/dev/zero: error: ", "character device", what="--data /dev/zero")
    bad(d, "reg", ["--test", "data"], "data: error: ", "folder", what="--test FOLDER")
    feed_fifo(os.path.join(d, "zeros"), "/dev/zero")
    bad(d, "logic", ["--epochs", "0", "--load", "zeros"], "zeros: error: too large", "model logic",
        what="--load from an endless pipe")
    feed_fifo(os.path.join(d, "csv_pipe"), os.path.join(d, "data", "lin.csv"))
    out = ok("reg", "--data", "csv_pipe", "--epochs", "1", cwd=d)
    check(len(epoch_losses(out)) == 1, "a csv through a pipe trains")


def test_nan_stop(d):
    rc, out, err = run("logic", "--lr", "1e4", cwd=d)
    check(rc == 1, f"NaN stop exits 1: {rc}")
    m = re.search(r"loss became (nan|infinite) in epoch (\d+), batch (\d+)", err)
    check(m is not None, f"NaN message names epoch and batch: {err!r}")
    w = np.load(os.path.join(d, "logic.npz"))
    check(all(np.all(np.isfinite(w[k])) for k in w.files), "the kept weights are finite")
    check("logic.npz" in err, "the message names the saved file")


def test_flags(d):
    rc, out, err = run("logic", "--help", cwd=d)
    check(rc == 0 and all(f in out for f in ("--epochs", "--batch", "--lr", "--seed", "--data", "--test",
                                                  "--load", "--save", "--quiet", "--log")), "--help")
    check(not os.path.exists(os.path.join(d, "logic.npz")), "--help trains nothing")
    for args, needle in [(["--frob"], "unknown option '--frob'"), (["--epochs", "-1"], "--epochs"),
                         (["--epochs"], "needs a value"), (["--batch", "0"], "--batch"),
                         (["--lr", "abc"], "--lr"), (["--lr", "0"], "--lr"), (["--seed", "x"], "--seed"),
                         (["--seed", "-1"], "--seed: '-1' is not an integer >= 0"),
                         (["stray"], "unexpected argument")]:
        bad(d, "logic", args, needle, what=f"flag {args}")
    ok("logic", "--batch", "5", "--save", "b5.npz", cwd=d)
    ok("logic", "--batch", "2000000000", "--save", "bbig.npz", cwd=d)
    check(open(os.path.join(d, "b5.npz"), "rb").read() == open(os.path.join(d, "bbig.npz"), "rb").read(),
          "a batch beyond the data is the whole data")
    out = ok("logic", "--quiet", "--epochs=5", cwd=d)
    check(out.splitlines() == [l for l in out.splitlines() if l.startswith("train: ")] and out,
          f"--quiet prints only the final lines: {out!r}")


def test_threads_cap(d):
    """--threads beyond 4 a core is capped, with a note; the pool starts that many."""
    env = dict(os.environ, FAKE_SLICES="1")
    cores = os.cpu_count()
    rc, out, err = run("logic", "--epochs", "1", "--threads", "3", cwd=d, env=env)
    check(rc == 0 and "slices 3" in out and "note" not in err, f"--threads 3: {out!r} {err!r}")
    rc, out, err = run("logic", "--epochs", "1", "--threads", "3000", cwd=d, env=env)
    most = 4 * min(cores, 256)
    check(rc == 0 and f"slices {most}\n" in out, f"--threads 3000 starts {most}: {out!r}")
    check(f"logic: note: --threads 3000 is more than 4 a core ({cores} core" in err and
          f"using {most}" in err, f"the cap is said: {err!r}")
    rc, out, err = run("logic", "--epochs", "1", "--threads", "3000", "--quiet", cwd=d, env=env)
    check(rc == 0 and err == "", f"--quiet keeps the note quiet: {err!r}")


def test_outputs_first(d):
    """Output paths that cannot be written are found before training, not after it."""
    os.mkdir(os.path.join(d, "folder"))
    for args, needles in [(["--save", "no/dir/w.npz"], ["no/dir/w.npz: error: cannot write: No such file"]),
                          (["--save", "folder"], ["folder: error: cannot write: it is a folder"]),
                          (["--log", "folder"], ["folder: error: cannot write: it is a folder"]),
                          (["--log", "/dev/full"], ["/dev/full: error: cannot write: No space left"])]:
        rc, out, err = run("logic", *args, cwd=d)
        check(rc == 1 and out == "", f"{args}: exit {rc}, trained first: {out[:200]!r}")
        for n in needles:
            check(n in err, f"{args}: {n!r} not in {err!r}")
    check(sorted(os.listdir(d)) == ["folder"] and not os.listdir(os.path.join(d, "folder")),
          f"nothing written: {os.listdir(d)}")
    # only evaluating loaded weights saves nothing, so no save path is checked
    ok("logic", "--epochs", "0", "--save", "w.npz", cwd=d)
    out = ok("logic", "--epochs", "0", "--load", "w.npz", cwd=d)
    check("saved" not in out, "--epochs 0 --load saves nothing")


def test_save_through_links_and_devices(d):
    """--save follows symbolic links to the file they name (the link stays a link) and
    writes through a pipe or a device instead of renaming a temporary over it."""
    ok("logic", "--epochs", "0", "--save", "plain.npz", cwd=d)
    want = open(os.path.join(d, "plain.npz"), "rb").read()
    os.mkdir(os.path.join(d, "real"))
    os.symlink("real/w.npz", os.path.join(d, "link.npz"))  # dangling until the save
    os.symlink("link.npz", os.path.join(d, "link2.npz"))   # a link to a link
    for name in ("link.npz", "link2.npz"):
        ok("logic", "--epochs", "0", "--save", name, cwd=d)
        check(os.path.islink(os.path.join(d, name)), f"--save {name}: the link was replaced")
        check(open(os.path.join(d, "real", "w.npz"), "rb").read() == want,
              f"--save {name}: the link's file does not hold the weights")
    fifo = os.path.join(d, "pipe.npz")
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo, "rb").read()))
    reader.start()
    ok("logic", "--epochs", "0", "--save", "pipe.npz", cwd=d)
    reader.join(10)
    import stat as st
    check(st.S_ISFIFO(os.lstat(fifo).st_mode), "--save over a pipe replaced it")
    check(got == [want], "the pipe's reader did not get the weights")
    if os.geteuid() == 0:  # a null device of our own (never the system's /dev/null)
        null = os.path.join(d, "null")
        os.mknod(null, 0o666 | st.S_IFCHR, os.makedev(1, 3))
        ok("logic", "--epochs", "0", "--save", "null", cwd=d)
        check(st.S_ISCHR(os.lstat(null).st_mode), "--save over a device replaced it with a file")
    check(not [f for f in os.listdir(d) if ".tmp" in f], f"temporaries left: {os.listdir(d)}")


def no_bigger_than(n):
    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past it fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (n, n))
    return limit


def test_log_full(d):
    """A log that cannot be written mid-training stops it as a NaN does: weights saved, the
    log cut back to its whole rows."""
    rc, out, err = run("logic", "--log", "run.csv", cwd=d, preexec_fn=no_bigger_than(1200))
    m = re.search(r"^run.csv: error: cannot write: File too large; training stopped after epoch "
                  r"(\d+), saving the weights to logic.npz$", err, re.M)
    check(rc == 1 and m, f"log failure: exit {rc}, {err!r}")
    check("saved logic.npz" in out, f"the weights are saved: {out[-200:]!r}")
    saved = os.path.exists(os.path.join(d, "logic.npz"))
    check(saved and sorted(np.load(os.path.join(d, "logic.npz")).files) == ["W", "h.b", "s"],
          "a whole .npz")
    text = open(os.path.join(d, "run.csv")).read()
    rows = text.splitlines()
    check(text.endswith("\n") and all(len(r.split(",")) == 12 for r in rows),
          f"only whole rows: {rows[-2:]}")
    check(m and len(rows) == int(m.group(1)) and rows[-1].startswith(f"{int(m.group(1)) - 1},"),
          f"a row for each epoch before the failing one: {rows[-1]}")


def test_kill_during_save(d):
    """SIGTERM while the weights are written removes the temporary (here a FIFO, so that the
    save waits in open() until the signal comes)."""
    exe = os.path.join(BIN, "logic")
    p = subprocess.Popen(["sh", "-c", 'kill -STOP $$; exec "$0" --save w.npz --quiet', exe], cwd=d,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    state = lambda: open(f"/proc/{p.pid}/stat").read().rsplit(")", 1)[1].split()[0]
    for _ in range(3000):
        if state() == "T":
            break
        time.sleep(0.01)
    tmp = os.path.join(d, f"w.npz.tmp{p.pid}")
    os.mkfifo(tmp)
    os.kill(p.pid, signal.SIGCONT)
    waiting = False
    for _ in range(3000):  # openat(2) of the FIFO, waiting for a reader
        waiting = open(f"/proc/{p.pid}/syscall").read().split()[0] == "257" and state() == "S"
        if waiting or p.poll() is not None:
            break
        time.sleep(0.01)
    check(waiting, f"the save waits in open(): {p.poll()}")
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=60)
    err = p.stderr.read().decode()
    check(p.returncode == -signal.SIGTERM, f"killed by SIGTERM: {p.returncode}, {err!r}")
    check(sorted(os.listdir(d)) == [], f"no temporary left: {os.listdir(d)}")


def main():
    global BIN
    ap = argparse.ArgumentParser()
    ap.add_argument("--nnc")
    ap.add_argument("--build", required=True)
    BIN = os.path.join(os.path.abspath(ap.parse_args().build), "tests", "runtime")
    tests = [v for k, v in sorted(globals().items()) if k.startswith("test_")]
    for t in tests:
        with tempfile.TemporaryDirectory() as d:
            t(d)
    print(f"{len(tests)} groups, {len(FAILS)} failures")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
