#!/usr/bin/python3
"""Validation sets, early stopping and the lr in the epoch line and --log (spec 10, 13).

1. `validation = 0.25`: a seeded quarter of the data is held out (the same for two runs:
   identical output and bytes); the epoch line shows val_loss and val_acc, the log's
   val_loss, val_acc and lr columns are filled.
2. Patience on a validation set whose targets contradict the training data, so val_loss
   rises from the first epoch on: the run stops after 1 + patience epochs, names epoch 1,
   and saves epoch 1's weights (the bytes of a one-epoch run). The printed val_loss of an
   epoch is the loss `--epochs 0 --load W --test VAL` reports for that epoch's weights.
3. `--validation SRC` replaces the block's set.
4. The lr column follows the schedule: exponential(gamma = 0.5) halves it every epoch,
   after a warm-up whose epoch ends at the full lr.
5. npz data: arrays named as the input (any shape with a sample's elements: x[4] from an
   (n, 2, 2) array) and the target (int64 class indices with label = true, or
   one-hot float32 values), also in an f32 build, train to the bytes of the same data
   from csv; a missing array or a wrong sample size is a message naming the file.
"""
import os
import re

import numpy as np

from nnctest import fail, main, run

CLS = """model cls {
    input x[2]
    target t[2]
    h = dense(x, 6, tanh)
    y = dense(h, 2, softmax)
    loss = cross_entropy(y, t)
}
train cls {
    data = csv("cls.csv", label = true)
    validation = 0.25
    epochs = 3
    batch = 8
    optimizer = adam(lr = 0.01)
    seed = 5
}
"""

REG = """model reg {
    input x[2]
    target t[1]
    param W[1, 2] = zeros
    loss = mse(W @ x, t)
}
train reg {
    data = csv("train.csv")
    validation = csv("val.csv")
    patience = 2
    epochs = 20
    batch = 4
    shuffle = false
    optimizer = sgd(lr = 0.2)
}
"""

SCHED = REG.replace("    patience = 2\n", "    warmup = 1\n    schedule = exponential(gamma = 0.5)\n") \
    .replace("epochs = 20", "epochs = 4").replace("reg", "sch")


def write(tmp, name, text):
    with open(os.path.join(tmp, name), "w") as f:
        f.write(text)


def setup(tmp):
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (40, 2))
    labels = (x[:, 0] + x[:, 1] > 0).astype(int)
    write(tmp, "cls.csv", "".join(f"{a:.6f},{b:.6f},{c}\n" for (a, b), c in zip(x, labels)))
    x = rng.uniform(-1, 1, (12, 2))
    write(tmp, "train.csv", "".join(f"{a:.6f},{b:.6f},{a + b:.6f}\n" for a, b in x))
    write(tmp, "val.csv", "".join(f"{a:.6f},{b:.6f},{-(a + b):.6f}\n" for a, b in x))
    write(tmp, "val2.csv", "".join(f"{a:.6f},{b:.6f},{2 * (a + b):.6f}\n" for a, b in x))
    write(tmp, "cls.nn", CLS)
    write(tmp, "reg.nn", REG)
    write(tmp, "sch.nn", SCHED)


def test_fraction(nnc, tmp):
    setup(tmp)
    run([nnc, "cls.nn"], tmp)
    outs = []
    for k in range(2):
        p = run(["./cls", "--log", f"log{k}.csv", "--save", f"w{k}.npz"], tmp)
        outs.append(re.sub(r"  \d+ samples/s", "", p.stdout))
    lines = [l for l in outs[0].splitlines() if l.startswith("epoch")]
    if len(lines) != 3 or not all(re.search(r"  val_loss \d+\.\d{6}  val_acc \d+\.\d\d%", l) for l in lines):
        fail("epoch lines without val_loss/val_acc:\n" + outs[0])
    if outs[0].replace("w0", "w1") != outs[1]:
        fail("two runs with one seed differ:\n" + outs[0] + outs[1])
    if open(os.path.join(tmp, "w0.npz"), "rb").read() != open(os.path.join(tmp, "w1.npz"), "rb").read():
        fail("two runs with one seed saved different weights")
    rows = open(os.path.join(tmp, "log0.csv")).read().splitlines()
    head = rows[0].split(",")
    if head[-3:] != ["val_loss", "val_acc", "lr"]:
        fail(f"log header {rows[0]}")
    for row, line in zip(rows[1:], lines):
        cells = dict(zip(head, row.split(",")))
        shown = float(re.search(r"val_loss (\S+)", line).group(1))
        if abs(float(cells["val_loss"]) - shown) > 1e-6 or not cells["val_acc"] or float(cells["lr"]) != 0.01:
            fail(f"log row {row} vs epoch line {line}")


def epoch_losses(text):
    return [float(v) for v in re.findall(r"val_loss (\d+\.\d+)", text.split("early stop")[0])]


def test_patience(nnc, tmp):
    run([nnc, "reg.nn"], tmp)
    p = run(["./reg", "--save", "best.npz"], tmp)
    losses = epoch_losses(p.stdout)
    if len(losses) != 3 or not losses[0] < losses[1] < losses[2]:
        fail("val_loss should rise for 3 epochs, then the run stop:\n" + p.stdout)
    m = re.search(r"early stop after epoch 3: no lower val_loss in 2 epochs; keeping the weights "
                  r"of epoch 1 \(val_loss (\S+)\)", p.stdout)
    if not m or float(m.group(1)) != losses[0]:
        fail("no early-stop line naming epoch 1:\n" + p.stdout)
    run(["./reg", "--epochs", "1", "--save", "one.npz"], tmp)
    if open(os.path.join(tmp, "best.npz"), "rb").read() != open(os.path.join(tmp, "one.npz"), "rb").read():
        fail("the saved weights are not epoch 1's")
    q = run(["./reg", "--epochs", "0", "--load", "best.npz", "--test", "val.csv"], tmp)
    got = float(re.search(r"test: loss (\S+)", q.stdout).group(1))
    if abs(got - losses[0]) > 1e-6:
        fail(f"epoch 1's weights have val loss {got}, the run printed {losses[0]}")


def test_flag(nnc, tmp):
    a = run(["./reg", "--epochs", "1"], tmp).stdout
    b = run(["./reg", "--epochs", "1", "--validation", "val2.csv"], tmp).stdout
    la, lb = epoch_losses(a), epoch_losses(b)
    if len(la) != 1 or len(lb) != 1 or la == lb:
        fail(f"--validation did not replace the set: {a}\n{b}")
    run(["./reg", "--validation"], tmp, code=1)


def test_lr_column(nnc, tmp):
    run([nnc, "sch.nn"], tmp)
    p = run(["./sch", "--log", "s.csv"], tmp)
    rows = open(os.path.join(tmp, "s.csv")).read().splitlines()
    head = rows[0].split(",")
    lrs = [float(dict(zip(head, r.split(",")))["lr"]) for r in rows[1:]]
    if lrs != [0.2, 0.2, 0.1, 0.05]:
        fail(f"lr column {lrs}")
    shown = re.findall(r"  lr (\S+)", p.stdout)
    if shown != ["0.2", "0.2", "0.1", "0.05"]:
        fail("epoch lines' lr: " + p.stdout)


NPZ = """model img {
    input x[4]
    target t[3]
    h = dense(x, 5, tanh)
    y = dense(h, 3, softmax)
    loss = cross_entropy(y, t)
}
train img {
    data = SRC
    epochs = 2
    batch = 4
    seed = 2
}
"""


def test_npz(nnc, tmp):
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, (13, 4))
    lab = rng.integers(0, 3, 13)
    np.savez(os.path.join(tmp, "lab.npz"), x=x, t=lab)
    np.savez_compressed(os.path.join(tmp, "hot.npz"), x=x.reshape(13, 2, 2), t=np.eye(3, dtype=np.float32)[lab])
    np.savez(os.path.join(tmp, "bad.npz"), x=x[:, :3], t=lab)
    np.savez(os.path.join(tmp, "nox.npz"), y=x, t=lab)
    write(tmp, "data.csv", "".join(",".join(f"{v:.17g}" for v in r) + f",{l}\n" for r, l in zip(x, lab)))
    for prec in ("f64", "f32"):
        saved = []
        for name, src in (("c", 'csv("data.csv", label = true)'), ("l", 'npz("lab.npz", label = true)'),
                          ("h", 'npz("hot.npz")')):
            write(tmp, name + ".nn", NPZ.replace("SRC", src).replace("img", name))
            run([nnc, "--precision=" + prec, name + ".nn"], tmp)
            run(["./" + name, "--quiet", "--save", "w.npz"], tmp)
            saved.append(open(os.path.join(tmp, "w.npz"), "rb").read())
        if saved[1] != saved[0] or saved[2] != saved[0]:
            fail(f"{prec}: npz data trains otherwise than the same csv data")
    p = run(["./l", "--data", "bad.npz"], tmp, code=1)
    if "bad.npz: error: x has 3 values a sample, but the model's input x needs 4" not in p.stderr:
        fail("wrong sample size: " + p.stderr)
    p = run(["./l", "--data", "nox.npz"], tmp, code=1)
    if "nox.npz: error: has no array 'x'" not in p.stderr:
        fail("missing array: " + p.stderr)


if __name__ == "__main__":
    main("nnc_validation_", [test_fraction, test_patience, test_flag, test_lr_column, test_npz])
