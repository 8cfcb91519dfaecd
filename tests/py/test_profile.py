#!/usr/bin/python3
"""./MODEL --profile (issue 15): after training, one row per operation of the step
(forward, backward, update) and per runtime call of the loop, with its time, share and,
for products, GFLOP/s; the shares add up to 100%, the rows to the total, and the total to
the epochs' measured time within 10%. Profiling trains the same weights (dropout masks
included), and the normal functions are not instrumented: nnc_train and nnc_evaluate call no
timer; nnc_step marks only behind the run's profiling flag (or, with sgd fused, not at all)."""
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nnctest import fail, main, run  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(ROOT, "examples")
ROW = re.compile(r"^\s*([\d.]+) ms\s+([\d.]+)%\s{2}(.{8})\s{2}(\w+)\s+(\S+:\d+)?\s*(.*)$")
TOTAL = re.compile(r"^\s*([\d.]+) ms\s+([\d.]+)%\s+total$")
HEAD = re.compile(r"^profile: (\d+) steps in (\d+) epochs; the rows add up to ([\d.]+) s, the epochs took ([\d.]+) s$",
                  re.M)


def profile(exe, tmp, *extra):
    """The rows (ms, share, gflops or None, pass, source, operation), the total and the header."""
    p = run([exe, "--profile", "--quiet", "--save", "w.npz", *extra], tmp)
    head = HEAD.search(p.stdout)
    if not head:
        fail(f"no profile header:\n{p.stdout}")
    rows, total = [], None
    for line in p.stdout[head.end():].splitlines()[2:]:
        t = TOTAL.match(line)
        if t:
            total = (float(t.group(1)), float(t.group(2)))
            break
        m = ROW.match(line)
        if not m:
            break
        ms, share, gf, kind, src, op = m.groups()
        rows.append((float(ms), float(share), float(gf) if gf.strip() else None, kind, src, op))
    if total is None:
        fail(f"no total row:\n{p.stdout}")
    return rows, total, head, p.stdout


def check_sums(rows, total, head, epoch_seconds, what):
    shares = sum(r[1] for r in rows)
    if abs(shares - 100) > 0.05 * len(rows) + 0.1:
        fail(f"{what}: shares add up to {shares}%")
    if abs(sum(r[0] for r in rows) - total[0]) > 0.0005 * len(rows) + 0.001:
        fail(f"{what}: rows add up to {sum(r[0] for r in rows)} ms, total {total[0]} ms")
    if abs(total[0] / 1e3 - epoch_seconds) > 0.1 * epoch_seconds + 0.002:
        fail(f"{what}: total {total[0]} ms, the epochs took {epoch_seconds} s")


def test_rows(nnc, tmp):
    run([nnc, os.path.join(EXAMPLES, "spirals.nn"), "-o", "spirals"], tmp)
    rows, total, head, out = profile("./spirals", tmp, "--log", "log.csv", "--epochs", "30")
    with open(os.path.join(tmp, "log.csv")) as f:
        header = f.readline().strip().split(",")
        seconds = sum(float(line.split(",")[header.index("seconds")]) for line in f)
    check_sums(rows, total, head, seconds, "spirals")
    if abs(float(head.group(4)) - seconds) > 0.01 * seconds + 0.001:
        fail(f"the header's epoch time {head.group(4)} is not the log's {seconds}")
    if head.group(2) != "30":
        fail(f"expected 30 epochs:\n{out}")
    kinds = {r[3] for r in rows}
    if kinds != {"forward", "backward", "update", "runtime"}:
        fail(f"passes {kinds}:\n{out}")
    for ms, share, gf, kind, src, op in rows:
        if kind != "runtime" and not re.fullmatch(r"spirals\.nn:\d+", src or ""):
            fail(f"row without its source line: {op}\n{out}")
        if kind in ("forward", "backward") and op.startswith("matmul") and gf is None:
            fail(f"a product without GFLOP/s: {op}\n{out}")
        if gf is not None and gf <= 0:
            fail(f"GFLOP/s {gf} for {op}")
    updates = [r for r in rows if r[3] == "update"]
    with open(os.path.join(EXAMPLES, "spirals.nn")) as f:
        lines = f.read().splitlines()
    names = [r[5].split()[-1] for r in updates]
    if len(updates) != 6 or names != ["h1.W", "h1.b", "h2.W", "h2.b", "z.W", "z.b"]:
        fail(f"expected one update row a param, got {names}\n{out}")
    for r in updates:  # an update row has the line of its param: a dense(...) statement
        if "dense" not in lines[int(r[4].split(":")[1]) - 1]:
            fail(f"update row at a line that does not make its param: {r}")
    if not any(r[3] == "forward" and "matmul" in r[5] and "+" in r[5] for r in rows):
        fail(f"no fused kernel shown (matmul + ...):\n{out}")


DROP = """model drop%s {
    input x[4]
    target t[2]
    h = dense(x, 8, relu)
    d = dropout(h, 0.5)
    y = dense(d, 2)
    loss = mse(y, t)
}
train drop%s {
    data = [[1, 2, 3, 4] -> [1, 0], [0, 1, 0, 1] -> [0, 1], [2, 0, 1, 0] -> [1, 1]]
    optimizer = %s
    epochs = 4
    batch = 2
}
"""


def test_same_weights(nnc, tmp):
    # profiling trains the same weights: every step's arithmetic is the normal one, dropout
    # masks included (adam: the normal step profiles; sgd: a copy without the fused update)
    for opt in ("adam", "sgd"):
        with open(os.path.join(tmp, f"drop_{opt}.nn"), "w") as f:
            f.write(DROP % (opt, opt, "adam(lr = 0.01)" if opt == "adam" else "sgd(lr = 0.1)"))
    models = [(os.path.join(EXAMPLES, "xor.nn"), ["--epochs", "200"]),
              (os.path.join(EXAMPLES, "curve.nn"), ["--epochs", "5"]),
              (os.path.join(tmp, "drop_adam.nn"), []), (os.path.join(tmp, "drop_sgd.nn"), [])]
    for path, extra in models:
        name = os.path.basename(path)[:-3]
        run([nnc, path, "-o", name], tmp)
        rows, total, head, _ = profile("./" + name, tmp, *extra)
        check_sums(rows, total, head, float(head.group(4)), name)
        run(["./" + name, "--quiet", "--save", "plain.npz", *extra], tmp)
        a, b = np.load(os.path.join(tmp, "w.npz")), np.load(os.path.join(tmp, "plain.npz"))
        for k in a.files:
            if a[k].tobytes() != b[k].tobytes():
                fail(f"{name}: --profile trained other weights for {k}")


def test_not_instrumented(nnc, tmp):
    ll = run([nnc, "--emit=llvm", os.path.join(EXAMPLES, "xor.nn")], tmp).stdout
    bodies = dict(re.findall(r'^define [^@]*@("?[\w.]+"?)\(.*?\n(.*?)^}', ll, re.S | re.M))
    for name in ("nnc_train", "nnc_evaluate"):
        if "nnc_rt_mark" in bodies[name] or ".profile" in bodies[name]:
            fail(f"{name} is instrumented")
    ll = run([nnc, "--emit=llvm", "-O0", os.path.join(EXAMPLES, "xor.nn")], tmp).stdout  # nothing inlined
    bodies = dict(re.findall(r'^define [^@]*@("?[\w.]+"?)\(.*?\n(.*?)^}', ll, re.S | re.M))
    step = bodies["nnc_step"]  # xor trains with sgd: --profile runs a copy of its step
    if "nnc_rt_mark" in step or "nnc_rt_mark" not in bodies.get("nnc_step.profile", ""):
        fail("xor's nnc_step marks, or its profile copy does not")
    with open(os.path.join(tmp, "drop_adam.nn"), "w") as f:
        f.write(DROP % ("adam", "adam", "adam(lr = 0.01)"))
    ll = run([nnc, "--emit=llvm", "-O0", "drop_adam.nn"], tmp).stdout
    bodies = dict(re.findall(r'^define [^@]*@("?[\w.]+"?)\(.*?\n(.*?)^}', ll, re.S | re.M))
    step = bodies["nnc_step"]  # adam: the normal step's marks wait behind its profiling flag
    if "nnc_step.profile" in bodies or "nnc_rt_mark" not in step or "br i1 %profiling" not in step:
        fail("the adam model's nnc_step does not mark behind the profiling flag")
    if "nnc_rt_mark" not in bodies.get("nnc_train.profile", ""):
        fail("no instrumented nnc_train.profile")
    p = run([nnc, "--interp", os.path.join(EXAMPLES, "xor.nn"), "--", "--profile", "--epochs", "1"], tmp, code=1)
    if "--profile" not in p.stderr:
        fail(f"--interp --profile: {p.stderr}")


if __name__ == "__main__":
    main("nnc-profile-", [test_rows, test_same_weights, test_not_instrumented])
