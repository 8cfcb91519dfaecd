#!/usr/bin/python3
"""The first non-finite value (issue 15): when the loss or a gradient turns NaN or infinite,
the runtime runs that batch again on the checked path (nnc_check_batch: node by node, each
buffer scanned) and names the first operation that made a non-finite value, its place and
its sample. tests/nan holds the golden messages; here: the same note in f32 and f64, with
1 and 2 threads, from nnc --run; the sample is the one of the batch; the
weights saved are still those from before the step, and the normal functions never call
the checked path."""
import os
import re
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nnctest import fail, main, run  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NAN = os.path.join(ROOT, "tests", "nan")
NOTE = re.compile(r"^(\w+): note: first non-finite value: (.*) at ([\w.]+):(\d+):(\d+)(?:, sample (\d+))?$", re.M)


def note(stderr, what):
    m = NOTE.search(stderr)
    if not m:
        fail(f"{what}: no 'first non-finite value' note in:\n{stderr}")
    return m.groups()[1:]


def test_same_note_everywhere(nnc, tmp):
    src = os.path.join(NAN, "log_sample.nn")
    want = ("log(p)", "log_sample.nn", "10", "29", "4")
    for prec in ("f32", "f64"):
        exe = os.path.join(tmp, "m_" + prec)
        run([nnc, "--precision=" + prec, src, "-o", exe], tmp)
        for threads in ("1", "2"):
            p = run([exe, "--quiet", "--threads", threads, "--save", "w.npz"], tmp, code=1)
            if note(p.stderr, f"{prec} --threads {threads}") != want:
                fail(f"{prec} --threads {threads}: {p.stderr}")
    p = run([nnc, "--run", src, "--", "--quiet", "--save", "w.npz"], tmp, code=1)
    if note(p.stderr, "--run") != want:
        fail(f"--run: {p.stderr}")
    # the error line is unchanged, and the note follows it
    lines = p.stderr.splitlines()
    if len(lines) != 2 or "the loss became nan in epoch 1, batch 1 of 1" not in lines[0]:
        fail(f"expected the error line, then the note:\n{p.stderr}")


def test_sample_in_batch(nnc, tmp):
    # one negative input, row 38 of 64: in batches of 16 that is batch 3, sample 6 unshuffled;
    # shuffled, some sample of the batch the run stops in
    x = np.linspace(0.5, 2, 64)
    x[37] = -1
    with open(os.path.join(tmp, "d.csv"), "w") as f:
        f.writelines(f"{v},0\n" for v in x)
    with open(os.path.join(NAN, "log_sample.nn")) as f:
        model = re.sub(r"data\s*=.*", 'data = csv("d.csv")', f.read()).replace("batch   = 5", "batch   = 16")
    for shuffle in ("false", "true"):
        with open(os.path.join(tmp, "s.nn"), "w") as f:
            f.write(model.replace("shuffle = false", "shuffle = " + shuffle))
        run([nnc, "s.nn", "-o", "s"], tmp)
        p = run(["./s", "--quiet", "--save", "w.npz"], tmp, code=1)
        got = note(p.stderr, "shuffle " + shuffle)
        if got[0] != "log(p)" or not 1 <= int(got[4]) <= 16:
            fail(f"unexpected note: {got}")
        if shuffle == "false" and ("batch 3 of 4" not in p.stderr or got[4] != "6"):
            fail(f"expected batch 3, sample 6:\n{p.stderr}")


def test_weights_before_the_step(nnc, tmp):
    src = os.path.join(NAN, "log_zero.nn")
    run([nnc, src, "-o", "lz"], tmp)
    p = run(["./lz", "--quiet", "--save", "stopped.npz"], tmp, code=1)
    if "epoch 8, batch 1" not in p.stderr or note(p.stderr, "log_zero")[0] != "log(p)":
        fail(f"unexpected stop:\n{p.stderr}")
    run(["./lz", "--quiet", "--epochs", "7", "--save", "seven.npz"], tmp)
    a, b = np.load(os.path.join(tmp, "stopped.npz")), np.load(os.path.join(tmp, "seven.npz"))
    if a["w"].tobytes() != b["w"].tobytes():
        fail(f"the checked path changed the saved weights: {a['w']} vs {b['w']}")


def test_normal_functions_never_check(nnc, tmp):
    ll = run([nnc, "--emit=llvm", os.path.join(NAN, "log_zero.nn")], tmp).stdout
    bodies = dict(re.findall(r'^define [^@]*@("?[\w.]+"?)\(.*?\n(.*?)^}', ll, re.S | re.M))
    for name in ("nnc_train", "nnc_step", "nnc_evaluate", "nnc_forward"):
        body = bodies.get(name)
        if body is None:
            continue
        if "nnc_rt_mark" in body or "nnc_check_batch" in body or "nnc_step.checked" in body:
            fail(f"{name} calls the instrumented path")
    if "nnc_check_batch" not in bodies:
        fail("no nnc_check_batch in the module")


if __name__ == "__main__":
    main("nnc-nan-", [test_same_note_everywhere, test_sample_in_batch, test_weights_before_the_step,
                      test_normal_functions_never_check])
