#!/usr/bin/python3
"""The last good weights are kept (spec section 7) even when a finite gradient makes an
update that is not finite (runtime/rt_guard.c).

1. sgd, momentum and adam with an lr so large that one step overflows: the compiled
   executable (the fused sgd step too), `nnc --run` and `nnc --interp` stop with a message
   naming the param and the batch, exit 1, and save finite weights: those from before the
   step that would have overflowed. Without the guard, w = ones and mse(w @ x, t) with
   sgd(lr = 3e38) saved w = -inf.
2. Weights so large (1e38, past a quarter of the largest float) that the cheap bound
   cannot vouch for any step: every step is checked exactly, none is refused, and the run
   trains to the interpreter's weights (lr 1e36 and dw = x: exact in f32 and f64 alike). --log (the fused step's stored path) too.
3. The same in f64 with lr = 1e308.
"""
import os

import numpy as np

from nnctest import fail, main, run

MODEL = """model guard {
    input x[1]
    target t[1]
    param w[1, 1] = %(init)s
    y = w @ x
    output y
    loss = %(loss)s
}
train guard {
    data = %(data)s
    batch = 1
    epochs = %(epochs)d
    optimizer = %(opt)s
}
"""
DATA = "[[1] -> [0], [1] -> [0]]"


def write(tmp, text):
    with open(os.path.join(tmp, "guard.nn"), "w") as f:
        f.write(text)


def weights(tmp, name):
    return np.load(os.path.join(tmp, name))["w"]


def three_ways(nnc, tmp, prec, code, extra=()):
    """Trains with the executable, --run and --interp; returns their outputs by name."""
    flags = ["--precision=" + prec]
    run([nnc] + flags + ["guard.nn", "-o", "guard"], tmp)
    out = {"exe": run(["./guard", "--save", "exe.npz"] + list(extra), tmp, code)}
    out["run"] = run([nnc, "--run"] + flags + ["guard.nn", "--", "--save", "run.npz"] + list(extra), tmp, code)
    out["interp"] = run([nnc, "--interp"] + flags + ["guard.nn", "--", "--save", "interp.npz"]
                        + list(extra), tmp, code)
    return out


def test_overflowing_steps(nnc, tmp):
    cases = [  # optimizer, precision, the batch that stops, the weight saved
        ("sgd(lr = 3e38)", "f32", 1, 1.0),
        ("adam(lr = 3e38)", "f32", 1, 1.0),
        ("sgd(lr = 1e308)", "f64", 1, 1.0),
    ]
    for opt, prec, batch, want in cases:
        write(tmp, MODEL % {"init": "ones", "loss": "mse(y, t)", "data": DATA, "epochs": 1, "opt": opt})
        for extra in ((), ("--log", "log.csv")):
            for how, p in three_ways(nnc, tmp, prec, 1, extra).items():
                msg = (f"the update of w would make it nan or infinite (is lr {float(opt.split('= ')[1][:-1]):g} "
                       f"too large?) in epoch 1, batch {batch} of 2")
                if msg not in p.stderr:
                    fail(f"{opt} {prec} {how} {extra}: expected '{msg}' in:\n{p.stderr}")
                w = weights(tmp, how + ".npz")
                if not (np.all(np.isfinite(w)) and w[0, 0] == want):
                    fail(f"{opt} {prec} {how}: saved w = {w}, expected {want}")


def test_momentum_keeps_last_good(nnc, tmp):
    """Momentum's first step is finite (w = -2e38), the second overflows the loss: the
    weights saved are the first step's, finite."""
    write(tmp, MODEL % {"init": "ones", "loss": "mse(y, t)", "data": DATA, "epochs": 1, "opt": "sgd(lr = 1e38, momentum = 0.9)"})
    for how, p in three_ways(nnc, tmp, "f32", 1).items():
        w = weights(tmp, how + ".npz")
        if "batch 2 of 2" not in p.stderr or not np.all(np.isfinite(w)) or w[0, 0] != np.float32(-2e38):
            fail(f"momentum {how}: w = {w}\n{p.stderr}")


def test_exact_checks_refuse_nothing(nnc, tmp):
    """loss = sum(w @ x - t): dw = x, so lr 1e36 moves w by 1e36 a step (its ulp is 1e31)."""
    data = "[[1] -> [1], [0.5] -> [3], [-0.25] -> [0]]"
    write(tmp, MODEL % {"init": "const(1e38)", "loss": "sum(y - t)", "data": data, "epochs": 3,
                        "opt": "sgd(lr = 1e36)"})
    for extra in ((), ("--log", "log.csv")):
        outs = three_ways(nnc, tmp, "f32", 0, extra)
        w = {how: weights(tmp, how + ".npz") for how in outs}
        if w["exe"][0, 0] == np.float32(1e38):
            fail(f"the weights did not move: {w}")
        for how in ("run", "interp"):
            if not np.allclose(w[how], w["exe"], rtol=1e-5, atol=0):
                fail(f"{how} trained to {w[how]}, the executable to {w['exe']} ({extra})")


if __name__ == "__main__":
    main("nnc-guard-", [test_overflowing_steps, test_momentum_keeps_last_good,
                        test_exact_checks_refuse_nothing])
