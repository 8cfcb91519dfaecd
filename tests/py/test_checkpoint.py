#!/usr/bin/python3
"""Checkpoints, --resume and signals (spec section 10).

1. For every optimizer (plain sgd, whose update the step fuses into its products;
   nesterov momentum with weight decay; adam; adamw; rmsprop with momentum; adagrad), with
   shuffling, warm-up, a step schedule and clipping: 4 epochs straight and 2 epochs with
   --checkpoint, then --resume to 4, save the same .npz bytes; so does --interp. The
   checkpoint holds the params under their names, the optimizer states and the counters.
2. SIGTERM (and SIGINT) in the middle of a longer run: the run finishes the batch, writes
   MODEL.ckpt.npz (or --checkpoint's file), says where, and exits 130; --resume from it
   ends with the bytes of an uninterrupted run (cosine schedule, adam, and fused sgd).
3. Patience survives a resume: the best epoch's weights are in the checkpoint.
4. A file that is not a checkpoint is an error naming it.
5. --log goes on across a resume: 2 epochs logged, then --resume to 4 with the same --log,
   gives the log of 4 epochs straight (seconds aside); rows the log holds past the
   checkpoint's epoch are dropped and logged again; another model's log is started anew.
"""
import os
import signal
import subprocess

import numpy as np

from nnctest import fail, main, run

MODEL = """model m {
    input x[3]
    target t[2]
    h = dense(x, 8, tanh)
    y = dense(h, 2, softmax)
    loss = cross_entropy(y, t)
}
train m {
    data = csv("d.csv", label = true)
    epochs = EPOCHS
    batch = BATCH
    optimizer = OPT
    OPTIONS
    seed = 4
}
"""
OPTIMIZERS = ["sgd(lr = 0.1)", "sgd(lr = 0.05, momentum = 0.9, nesterov = true, weight_decay = 0.01)",
              "adam(lr = 0.01)", "adamw(lr = 0.01, weight_decay = 0.1)",
              "rmsprop(lr = 0.01, momentum = 0.5)", "adagrad(lr = 0.1, weight_decay = 0.01)"]


def source(opt, options, epochs=4, batch=8):
    return (MODEL.replace("EPOCHS", str(epochs)).replace("BATCH", str(batch))
            .replace("OPTIONS", options).replace("OPT", opt))


def same(tmp, a, b, what):
    if open(os.path.join(tmp, a), "rb").read() != open(os.path.join(tmp, b), "rb").read():
        fail(f"{what}: {a} and {b} differ")


def write_data(tmp, n):
    rng = np.random.default_rng(2)
    x = rng.uniform(-1, 1, (n, 3))
    lab = (x[:, 0] * x[:, 1] + x[:, 2] > 0).astype(int)
    with open(os.path.join(tmp, "d.csv"), "w") as f:
        f.write("".join(f"{a:.5f},{b:.5f},{c:.5f},{l}\n" for (a, b, c), l in zip(x, lab)))


def test_resume(nnc, tmp):
    write_data(tmp, 50)
    options = "warmup = 1\n    schedule = step(every = 1, gamma = 0.7)\n    clip = 0.5"
    for i, opt in enumerate(OPTIMIZERS):
        with open(os.path.join(tmp, "m.nn"), "w") as f:
            f.write(source(opt, options))
        run([nnc, "m.nn"], tmp)
        run(["./m", "--quiet", "--save", "straight.npz"], tmp)
        run(["./m", "--quiet", "--epochs", "2", "--checkpoint", "k.ckpt.npz"], tmp)
        p = run(["./m", "--resume", "k.ckpt.npz", "--save", "resumed.npz"], tmp)
        if "epoch 1 " in p.stdout or "epoch 3 " not in p.stdout:
            fail(f"the resumed run prints only its epochs:\n{p.stdout}")
        same(tmp, "straight.npz", "resumed.npz", opt)
        keys = np.load(os.path.join(tmp, "k.ckpt.npz")).files
        if not {"h.W", "y.b", "ckpt"} <= set(keys) or (i > 0 and "opt0:h.W" not in keys):
            fail(f"{opt}: checkpoint entries {keys}")
        if i in (2, 4):  # the interpreter's trainer follows the same protocol
            interp = [nnc, "--interp", "m.nn", "--", "--quiet"]
            run(interp + ["--save", "i_straight.npz"], tmp)
            run(interp + ["--epochs", "2", "--checkpoint", "i.ckpt.npz"], tmp)
            run(interp + ["--resume", "i.ckpt.npz", "--save", "i_resumed.npz"], tmp)
            same(tmp, "i_straight.npz", "i_resumed.npz", opt + " (--interp)")


def test_resume_cosine(nnc, tmp):
    """Cosine's T comes from the train block's epochs: --epochs 3 (whose third epoch is
    annealed) then --resume to 4 anneals as 4 epochs straight."""
    write_data(tmp, 50)
    with open(os.path.join(tmp, "m.nn"), "w") as f:
        f.write(source("adam(lr = 0.01)", "warmup = 1\n    schedule = cosine(min_lr = 0.0001)"))
    run([nnc, "m.nn"], tmp)
    run(["./m", "--quiet", "--save", "straight.npz"], tmp)
    run(["./m", "--quiet", "--epochs", "3", "--checkpoint", "k.ckpt.npz"], tmp)
    run(["./m", "--quiet", "--resume", "k.ckpt.npz", "--save", "resumed.npz"], tmp)
    same(tmp, "straight.npz", "resumed.npz", "adam with a cosine schedule")


def interrupt(tmp, args, sig):
    """Starts a run, signals it once its second epoch line is out; returns its stderr."""
    p = subprocess.Popen(args, cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in p.stdout:
        if line.startswith("epoch 2 "):
            p.send_signal(sig)
            break
    out, err = p.communicate(timeout=300)
    if p.returncode != 130:
        fail(f"{args} after signal {sig} exited {p.returncode}, expected 130:\n{out}{err}")
    return err


def test_signals(nnc, tmp):
    write_data(tmp, 3000)
    cases = [("adam(lr = 0.003)", "schedule = cosine(min_lr = 0.0001)", signal.SIGTERM, None),
             ("sgd(lr = 0.05)", "", signal.SIGINT, "mine.npz")]
    for opt, options, sig, ckpt in cases:
        with open(os.path.join(tmp, "m.nn"), "w") as f:
            f.write(source(opt, options, epochs=12, batch=2))
        run([nnc, "m.nn"], tmp)
        run(["./m", "--quiet", "--save", "straight.npz"], tmp)
        args = ["./m", "--save", "never.npz"] + (["--checkpoint", ckpt] if ckpt else [])
        err = interrupt(tmp, args, sig)
        path = ckpt or "m.ckpt.npz"
        if f"checkpoint saved to {path} (--resume {path} goes on)" not in err:
            fail(f"the message does not say where the checkpoint went:\n{err}")
        if os.path.exists(os.path.join(tmp, "never.npz")):
            fail("an interrupted run saved its weights")
        run(["./m", "--quiet", "--resume", path, "--save", "resumed.npz"], tmp)
        same(tmp, "straight.npz", "resumed.npz", f"{opt} interrupted by signal {sig}")


def test_patience(nnc, tmp):
    write_data(tmp, 60)
    with open(os.path.join(tmp, "m.nn"), "w") as f:
        f.write(source("adam(lr = 0.3)", "validation = 0.3\n    patience = 2", epochs=8))
    run([nnc, "m.nn"], tmp)
    a = run(["./m", "--save", "straight.npz"], tmp).stdout
    run(["./m", "--quiet", "--epochs", "3", "--checkpoint", "p.ckpt.npz"], tmp)
    b = run(["./m", "--resume", "p.ckpt.npz", "--save", "resumed.npz"], tmp).stdout
    same(tmp, "straight.npz", "resumed.npz", "patience across a resume")
    if a.splitlines()[-3:-1] != b.splitlines()[-3:-1]:
        fail(f"the end of the runs differs:\n{a}\n{b}")


def log_rows(tmp, name):
    """The log's rows without the seconds column (the 6th)."""
    with open(os.path.join(tmp, name)) as f:
        return [",".join(c for i, c in enumerate(line.rstrip("\n").split(",")) if i != 5) for line in f]


def test_resume_log(nnc, tmp):
    write_data(tmp, 50)
    with open(os.path.join(tmp, "m.nn"), "w") as f:
        f.write(source("adam(lr = 0.01)", "validation = 0.2"))
    run([nnc, "m.nn"], tmp)
    run(["./m", "--quiet", "--log", "straight.csv", "--save", "straight.npz"], tmp)
    want = log_rows(tmp, "straight.csv")
    run(["./m", "--quiet", "--epochs", "2", "--checkpoint", "k.ckpt.npz", "--log", "cut.csv"], tmp)
    with open(os.path.join(tmp, "longer.csv"), "w") as f:  # rows for epochs 3 and 4 already
        f.write(open(os.path.join(tmp, "straight.csv")).read())
    with open(os.path.join(tmp, "other.csv"), "w") as f:
        f.write("epoch,loss\n1,0.5\n")
    for name in ("cut.csv", "longer.csv"):
        run(["./m", "--quiet", "--resume", "k.ckpt.npz", "--log", name, "--save", "resumed.npz"], tmp)
        if log_rows(tmp, name) != want:
            fail(f"--log {name} across a resume:\n{open(os.path.join(tmp, name)).read()}"
                 f"\nexpected (seconds aside):\n{open(os.path.join(tmp, 'straight.csv')).read()}")
    run(["./m", "--quiet", "--resume", "k.ckpt.npz", "--log", "other.csv"], tmp)
    if log_rows(tmp, "other.csv") != [want[0]] + want[3:]:
        fail("another model's log, resumed into: " + open(os.path.join(tmp, "other.csv")).read())


def test_not_checkpoint(nnc, tmp):
    run(["./m", "--quiet", "--epochs", "0", "--save", "w.npz"], tmp)
    p = run(["./m", "--resume", "w.npz"], tmp, code=1)
    if "w.npz" not in p.stderr:
        fail("a weights file given to --resume: " + p.stderr)


if __name__ == "__main__":
    main("nnc_checkpoint_", [test_resume, test_resume_cosine, test_signals, test_patience,
                             test_resume_log, test_not_checkpoint])
