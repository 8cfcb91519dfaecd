#!/usr/bin/python3
"""Training options against PyTorch 1.13 itself (spec sections 10 and 13).

Two small models (dense layers; mse, and cross-entropy over softmax) train for 5 epochs
of 10 samples in batches of 4 (a short last batch) without shuffling, from the same
initial weights (an .npz the test writes, given with --load), in f64, under every
optimizer (sgd, sgd with momentum, nesterov, adam, adamw, rmsprop with and without
momentum, adagrad) x weight decay x schedule (none, step, exponential, cosine) x warm-up
x clip. The reference is torch.optim.*, torch.optim.lr_scheduler.* (created when the
warm-up ends, stepped after each later epoch) and torch.nn.utils.clip_grad_norm_, the
warm-up setting the group's lr by hand, as spec section 10 defines it. The saved weights
agree to 1e-9 relative.

Every combination runs through `nnc --interp` (its optimizer is written from PyTorch's
definitions in C; the runtime owns the lr and clipping); the generated code is compiled
once for each optimizer x weight decay, each with another schedule/warm-up/clip
combination, so every optimizer term and every combination is covered while the test
compiles 32 programs rather than 256.
"""
import itertools
import os

import numpy as np

from nnctest import fail, main, run, sanitized

try:
    import torch
except ImportError:  # make test installs python3-torch
    torch = None

EPOCHS, BATCH, N = 5, 4, 10
MODELS = {
    "reg": ("""model reg {
    input x[3]
    target t[2]
    h = dense(x, 4, tanh)
    y = dense(h, 2)
    loss = mse(y, t)
}
""", 3, 2),
    "cls": ("""model cls {
    input x[3]
    target t[3]
    h = dense(x, 5, tanh)
    y = dense(h, 3, softmax)
    loss = cross_entropy(y, t)
}
""", 3, 3),
}
# name, nnc's optimizer call (without weight decay), torch's class and arguments
OPTIMIZERS = [
    ("sgd", "sgd(lr = 0.1", "SGD", dict(lr=0.1)),
    ("momentum", "sgd(lr = 0.1, momentum = 0.9", "SGD", dict(lr=0.1, momentum=0.9)),
    ("nesterov", "sgd(lr = 0.05, momentum = 0.8, nesterov = true", "SGD",
     dict(lr=0.05, momentum=0.8, nesterov=True)),
    ("adam", "adam(lr = 0.01, beta1 = 0.8, beta2 = 0.99, eps = 1e-7", "Adam",
     dict(lr=0.01, betas=(0.8, 0.99), eps=1e-7)),
    ("adamw", "adamw(lr = 0.01", "AdamW", dict(lr=0.01)),
    ("rmsprop", "rmsprop(lr = 0.01, alpha = 0.9", "RMSprop", dict(lr=0.01, alpha=0.9)),
    ("rmsprop_m", "rmsprop(lr = 0.005, momentum = 0.5, eps = 1e-6", "RMSprop",
     dict(lr=0.005, momentum=0.5, eps=1e-6)),
    ("adagrad", "adagrad(lr = 0.1", "Adagrad", dict(lr=0.1)),
]
SCHEDULES = [None, ("step(every = 2, gamma = 0.5)", "StepLR", dict(step_size=2, gamma=0.5)),
             ("exponential(gamma = 0.8)", "ExponentialLR", dict(gamma=0.8)),
             ("cosine(min_lr = 0.001)", "CosineAnnealingLR", None)]
WARMUPS = [0, 2]
CLIPS = [0, 0.3]
DECAYS = [0, 0.05]


def source(model, opt, wd, sched, warmup, clip):
    text, _, _ = MODELS[model]
    call = opt[1] + (f", weight_decay = {wd})" if wd else ")")
    lines = [f"data = csv(\"{model}.csv\")", f"epochs = {EPOCHS}", f"batch = {BATCH}",
             "shuffle = false", f"optimizer = {call}"]
    if sched:
        lines.append(f"schedule = {sched[0]}")
    if warmup:
        lines.append(f"warmup = {warmup}")
    if clip:
        lines.append(f"clip = {clip}")
    return text + f"train {model} {{\n" + "".join(f"    {l}\n" for l in lines) + "}\n"


def write_data(tmp):
    """Each model's csv and initial weights; returns {model: (x, t, weights)}."""
    rng = np.random.default_rng(7)
    sets = {}
    for model, (_, nin, nout) in MODELS.items():
        x = rng.uniform(-1, 1, (N, nin))
        if model == "cls":
            t = np.eye(nout)[rng.integers(0, nout, N)]
        else:
            t = rng.uniform(-1, 1, (N, nout))
        np.savetxt(os.path.join(tmp, model + ".csv"), np.hstack([x, t]), delimiter=",", fmt="%.17g")
        hid = 4 if model == "reg" else 5
        w = {"h.W": rng.normal(0, 0.7, (hid, nin)), "h.b": rng.normal(0, 0.1, hid),
             "y.W": rng.normal(0, 0.7, (nout, hid)), "y.b": rng.normal(0, 0.1, nout)}
        np.savez(os.path.join(tmp, model + "_init.npz"), **w)
        sets[model] = (x, t, w)
    return sets


def torch_train(model, data, opt, wd, sched, warmup, clip):
    x, t, w0 = data
    names = ["h.W", "h.b", "y.W", "y.b"]
    ps = [torch.tensor(w0[n], dtype=torch.float64, requires_grad=True) for n in names]
    X, T = torch.tensor(x), torch.tensor(t)
    args = dict(opt[3])
    if wd:
        args["weight_decay"] = wd
    o = getattr(torch.optim, opt[2])(ps, **args)
    lr = args["lr"]
    nb = (N + BATCH - 1) // BATCH
    sch = None
    for e in range(EPOCHS):
        if e == warmup:
            o.param_groups[0]["lr"] = lr
            if sched:
                kw = sched[2] if sched[2] is not None else dict(T_max=EPOCHS - warmup, eta_min=0.001)
                sch = getattr(torch.optim.lr_scheduler, sched[1])(o, **kw)
        for b in range(nb):
            if e < warmup:
                o.param_groups[0]["lr"] = lr * (e * nb + b + 1) / (warmup * nb)
            xb, tb = X[b * BATCH:(b + 1) * BATCH], T[b * BATCH:(b + 1) * BATCH]
            z = torch.tanh(xb @ ps[0].T + ps[1]) @ ps[2].T + ps[3]
            if model == "cls":
                loss = -(tb * torch.log_softmax(z, 1)).sum(1).mean()
            else:
                loss = ((z - tb) ** 2).mean(1).mean()
            o.zero_grad()
            loss.backward()
            if clip:
                torch.nn.utils.clip_grad_norm_(ps, clip)
            o.step()
        if sch is not None:
            sch.step()
    return {n: p.detach().numpy() for n, p in zip(names, ps)}


def compare(what, saved, want):
    got = np.load(saved)
    for k, v in want.items():
        if not np.allclose(got[k], v, rtol=1e-9, atol=1e-12):
            err = np.max(np.abs(got[k] - v) / (np.abs(v) + 1e-300))
            fail(f"{what}: {k} differs from PyTorch's by {err:.3g} relative\n"
                 f"nnc:   {got[k].ravel()[:6]}\ntorch: {v.ravel()[:6]}")


def variants():
    """Every optimizer x weight decay x combination; under the sanitizers (which look for
    memory errors, not for other numbers) an eighth of the combinations, every schedule,
    warm-up and clip still met by every optimizer, and each optimizer compiled once (with
    the first decay: the code generator's path is the same with the other)."""
    combos = list(itertools.product(SCHEDULES, WARMUPS, CLIPS))
    step = 8 if sanitized() else 1
    for i, (opt, wd) in enumerate(itertools.product(OPTIMIZERS, DECAYS)):
        for j, combo in enumerate(combos):
            compiled = j == i % len(combos) and (wd == DECAYS[0] or not sanitized())
            if compiled or (i + j) % step == 0:
                yield opt, wd, combo, compiled


def test_against_torch(nnc, tmp):
    if torch is None:
        fail("python3-torch is missing (make test installs it)")
    torch.set_num_threads(1)
    sets = write_data(tmp)
    count = 0
    for n, (opt, wd, (sched, warmup, clip), compiled) in enumerate(variants()):
        # compiled: both models, one under the sanitizers (each compile is slow there)
        models = list(MODELS) if compiled and not sanitized() else [list(MODELS)[n % 2]]
        for model in models:
            what = f"{model} {opt[0]} wd={wd} schedule={sched and sched[1]} warmup={warmup} clip={clip}"
            src = os.path.join(tmp, model + ".nn")
            with open(src, "w") as f:
                f.write(source(model, opt, wd, sched, warmup, clip))
            want = torch_train(model, sets[model], opt, wd, sched, warmup, clip)
            flags = ["--quiet", "--load", model + "_init.npz", "--save", "out.npz"]
            run([nnc, "--precision=f64", "--interp", src, "--"] + flags, tmp)
            compare(what + " (--interp)", os.path.join(tmp, "out.npz"), want)
            if compiled:
                run([nnc, "--precision=f64", src, "-o", model], tmp)
                run(["./" + model] + flags, tmp)
                compare(what + " (compiled)", os.path.join(tmp, "out.npz"), want)
                count += 1
    if count != (len(OPTIMIZERS) if sanitized() else 2 * len(OPTIMIZERS) * len(DECAYS)):
        fail(f"compiled {count} variants")


COSINE = """model c {
    input x[1]
    target t[1]
    p = dense(x, 1)
    loss = mse(p, t)
}
train c {
    data = [[0.5] -> [0.2], [0.1] -> [0.3]]
    epochs = 3
    warmup = 1
    batch = 2
    schedule = cosine(min_lr = 0.001)
    optimizer = sgd(lr = 0.1)
}
"""


def test_cosine_past_tmax(nnc, tmp):
    """--epochs past the block's: cosine's T stays the block's (epochs - warmup = 2) and the
    lr goes on as CosineAnnealingLR's does past T_max (its turn at k - 1 - T = 2T m)."""
    with open(os.path.join(tmp, "c.nn"), "w") as f:
        f.write(COSINE)
    run([nnc, "--precision=f64", "c.nn", "-o", "c"], tmp)
    run(["./c", "--epochs", "12", "--quiet", "--log", "c.csv"], tmp)
    with open(os.path.join(tmp, "c.csv")) as f:
        head = f.readline().strip().split(",")
        got = [float(line.split(",")[head.index("lr")]) for line in f]
    w = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([w], lr=0.1)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=2, eta_min=0.001)
    for epoch in range(1, 12):  # epoch 0 is the warm-up
        if epoch > 1:
            opt.step()
            sched.step()
        want = opt.param_groups[0]["lr"]
        if abs(got[epoch] - want) > 1e-9 * want:
            fail(f"cosine past T_max: epoch {epoch + 1} lr {got[epoch]!r}, PyTorch {want!r}")


def test_guard(nnc, tmp):
    """An lr far too large: every optimizer's run stops with a message and saves finite
    weights from before the failing step (the update guard's bounds and dry run), f32 and f64."""
    for prec, big in (("f32", "1e37"), ("f64", "1e306")):
        for name, call, _, _ in OPTIMIZERS:
            call = call.replace("lr = 0.1", "lr = 0.05").split("lr = ")
            opt = call[0] + "lr = " + big + call[1][call[1].index(",") if "," in call[1] else len(call[1]):]
            src = os.path.join(tmp, "g.nn")
            with open(src, "w") as f:
                f.write(source("reg", (name, opt), 0.5, None, 0, 0).replace("epochs = 5", "epochs = 50"))
            run([nnc, "--precision=" + prec, src, "-o", "g"], tmp)
            p = run(["./g", "--quiet", "--load", "reg_init.npz", "--save", "g.npz"], tmp, code=1)
            if "training stopped, saving the weights from before this step" not in p.stderr:
                fail(f"{prec} {opt}: {p.stderr}")
            w = np.load(os.path.join(tmp, "g.npz"))
            if not all(np.isfinite(w[k]).all() for k in w.files):
                fail(f"{prec} {opt}: non-finite weights saved")


if __name__ == "__main__":
    main("nnc_torch_optim_", [test_against_torch, test_cosine_past_tmax, test_guard])
