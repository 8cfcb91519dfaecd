#!/usr/bin/python3
"""nnc --interp on a small CNN against independent references, f64, to 1e-9.

The model has every image op: conv (the sugar, padding) with relu, maxpool, a strided
conv2d with a non-square kernel, an overlapping avgpool, flatten, reshape, concat and
dropout, then dense and softmax cross-entropy. nnc --interp trains it for a few steps
(several batches, a short last one, sgd with momentum and adam); its saved weights must
equal those of

- a NumPy re-derivation of the forward and backward pass written here from the
  definitions (im2col for the convolution, first maximum of each window for maxpool),
- PyTorch's autograd on F.conv2d / F.max_pool2d / F.avg_pool2d in f64, when
  /usr/bin/python3 has torch (skipped, and said so, where it has not),

with the dropout masks drawn here from the bits of notes/conv-ir.md (seed, step, mask id,
sample), so the interpreter's masks are checked too. The final `train:` loss must be the
references' loss with dropout off (evaluation is the identity).
"""
import os
import re
import sys

import numpy as np

from nnctest import fail, main, run

MODEL = """
model cnn {
    input x[2, 7, 6]
    target t[3]
    param K2[4, 3, 2, 3] = xavier
    param s2[4] = uniform(-0.1, 0.1)
    c1 = conv(x, 3, 3, relu, padding = 1)
    p1 = maxpool(c1, 2)
    c2 = tanh(conv2d(p1, K2, s2, stride = 2, padding = 1))
    a = avgpool(c1, 3, stride = 2)
    f = concat(flatten(c2), reshape(a, [18]))
    d = dropout(f, 0.3)
    y = dense(d, 3)
    loss = cross_entropy(softmax(y), t)
}
train cnn {
    data      = %s
    epochs    = 2
    batch     = 2
    optimizer = %s
    seed      = 5
    shuffle   = false
}
"""
P_DROP, MASK_ID = 0.3, 0
M64 = (1 << 64) - 1


# ---- the dropout masks, bit for bit as notes/conv-ir.md states them ----

def mix(z):
    z ^= z >> 30
    z = (z * 0xbf58476d1ce4e5b9) & M64
    z ^= z >> 27
    z = (z * 0x94d049bb133111eb) & M64
    return z ^ (z >> 31)


def mask(seed, step, mask_id, sample, p, n):
    s = mix(mix(mix(seed ^ 0x6a09e667f3bcc909) ^ step) ^ (((mask_id << 40) ^ sample) & M64))
    out = np.zeros(n)
    for e in range(n):
        u = (mix((s + (e + 1) * 0x9e3779b97f4a7c15) & M64) >> 11) * 2.0 ** -53
        out[e] = 1.0 / (1.0 - p) if u >= p else 0.0
    return out


# ---- NumPy: the model's forward and backward pass from the definitions ----

def patches(x, kh, kw, stride, pad):
    """cols[c, u, v, oy, ox] = x[c, oy*stride+u-pad, ox*stride+v-pad] (0 outside)."""
    c, h, w = x.shape
    xp = np.zeros((c, h + 2 * pad, w + 2 * pad))
    xp[:, pad:pad + h, pad:pad + w] = x
    ho, wo = (h + 2 * pad - kh) // stride + 1, (w + 2 * pad - kw) // stride + 1
    cols = np.zeros((c, kh, kw, ho, wo))
    for u in range(kh):
        for v in range(kw):
            cols[:, u, v] = xp[:, u:u + stride * ho:stride, v:v + stride * wo:stride]
    return cols


def conv_fwd(x, k, b, stride, pad):
    cols = patches(x, k.shape[2], k.shape[3], stride, pad)
    return np.einsum("fcuv,cuvyx->fyx", k, cols) + b[:, None, None], cols


def conv_bwd(d, k, cols, xshape, stride, pad):
    """dx, dK, db of conv_fwd."""
    dk = np.einsum("fyx,cuvyx->fcuv", d, cols)
    dcols = np.einsum("fcuv,fyx->cuvyx", k, d)
    c, h, w = xshape
    dxp = np.zeros((c, h + 2 * pad, w + 2 * pad))
    ho, wo = d.shape[1], d.shape[2]
    for u in range(k.shape[2]):
        for v in range(k.shape[3]):
            dxp[:, u:u + stride * ho:stride, v:v + stride * wo:stride] += dcols[:, u, v]
    return dxp[:, pad:pad + h, pad:pad + w], dk, d.sum(axis=(1, 2))


def windows(a, k, stride):
    """[c, oy, ox, k*k]: each window's elements in row-major order."""
    c, h, w = a.shape
    ho, wo = (h - k) // stride + 1, (w - k) // stride + 1
    out = np.zeros((c, ho, wo, k * k))
    for oy in range(ho):
        for ox in range(wo):
            out[:, oy, ox] = a[:, oy * stride:oy * stride + k, ox * stride:ox * stride + k].reshape(c, -1)
    return out


def pool_bwd(share, shape, k, stride):
    """Adds share[c, oy, ox, k*k] back onto the windows (overlaps add)."""
    da = np.zeros(shape)
    c, ho, wo, _ = share.shape
    for oy in range(ho):
        for ox in range(wo):
            da[:, oy * stride:oy * stride + k, ox * stride:ox * stride + k] += share[:, oy, ox].reshape(c, k, k)
    return da


def numpy_sample(w, x, t, m):
    """The loss and its gradients for one sample, mask m on f."""
    z1, cols1 = conv_fwd(x, w["c1.W"], w["c1.b"], 1, 1)
    c1 = np.maximum(z1, 0)
    win = windows(c1, 2, 2)
    arg = np.argmax(win, axis=3)  # the first maximum
    p1 = np.take_along_axis(win, arg[..., None], axis=3)[..., 0]
    z2, cols2 = conv_fwd(p1, w["K2"], w["s2"], 2, 1)
    c2 = np.tanh(z2)
    a = windows(c1, 3, 2).mean(axis=3)
    f = np.concatenate([c2.ravel(), a.ravel()])
    d = f * m
    y = w["y.W"] @ d + w["y.b"]
    e = np.exp(y - y.max())
    sm = e / e.sum()
    loss = -np.sum(t * np.log(sm))
    dy = sm * t.sum() - t
    g = {"y.W": np.outer(dy, d), "y.b": dy}
    df = (dy @ w["y.W"]) * m
    dc2, da = df[:c2.size].reshape(c2.shape), df[c2.size:].reshape(a.shape)
    dz2 = dc2 * (1 - c2 ** 2)
    dp1, g["K2"], g["s2"] = conv_bwd(dz2, w["K2"], cols2, p1.shape, 2, 1)
    onehot = np.zeros(win.shape)
    np.put_along_axis(onehot, arg[..., None], dp1[..., None], axis=3)
    dc1 = pool_bwd(onehot, c1.shape, 2, 2)
    dc1 += pool_bwd(np.repeat(da[..., None] / 9, 9, axis=3), c1.shape, 3, 2)
    dz1 = dc1 * (z1 > 0)
    _, g["c1.W"], g["c1.b"] = conv_bwd(dz1, w["c1.W"], cols1, x.shape, 1, 1)
    return loss, g


# ---- PyTorch: the same model through autograd ----

def torch_sample(torch, w, x, t, m):
    F = torch.nn.functional
    tw = {k: torch.tensor(v, requires_grad=True) for k, v in w.items()}
    xt = torch.tensor(x)[None]
    c1 = F.relu(F.conv2d(xt, tw["c1.W"], tw["c1.b"], padding=1))
    p1 = F.max_pool2d(c1, 2)
    c2 = torch.tanh(F.conv2d(p1, tw["K2"], tw["s2"], stride=2, padding=1))
    a = F.avg_pool2d(c1, 3, stride=2)
    f = torch.cat([c2.reshape(-1), a.reshape(-1)])
    y = tw["y.W"] @ (f * torch.tensor(m)) + tw["y.b"]
    loss = -(torch.tensor(t) * F.log_softmax(y, dim=0)).sum()
    loss.backward()
    return loss.item(), {k: v.grad.numpy() for k, v in tw.items()}


# ---- training as the runtime does it ----

def train(sample_fn, w, xs, ts, opt, epochs, batch, seed):
    w = {k: v.copy() for k, v in w.items()}
    state = {k: [np.zeros_like(v), np.zeros_like(v)] for k, v in w.items()}
    step = 0
    nf = 34
    for _ in range(epochs):
        for start in range(0, len(xs), batch):
            n = min(batch, len(xs) - start)
            g = {k: np.zeros_like(v) for k, v in w.items()}
            for s in range(n):
                m = mask(seed, step, MASK_ID, s, P_DROP, nf)
                _, gs = sample_fn(w, xs[start + s], ts[start + s], m)
                for k in g:
                    g[k] += gs[k]
            step += 1
            for k in w:
                gk = g[k] / n
                mk, vk = state[k]
                if opt["kind"] == "adam":
                    b1, b2 = opt["beta1"], opt["beta2"]
                    mk[...] = b1 * mk + (1 - b1) * gk
                    vk[...] = b2 * vk + (1 - b2) * gk * gk
                    mhat, vhat = mk / (1 - b1 ** step), vk / (1 - b2 ** step)
                    w[k] -= opt["lr"] * mhat / (np.sqrt(vhat) + opt["eps"])
                else:
                    mk[...] = opt["momentum"] * mk + gk
                    w[k] -= opt["lr"] * mk
    return w


def eval_loss(sample_fn, w, xs, ts):
    ones = np.ones(34)
    return np.mean([sample_fn(w, x, t, ones)[0] for x, t in zip(xs, ts)])


def optimizer_text(opt):
    if opt["kind"] == "adam":
        return "adam(lr = %g, beta1 = %g, beta2 = %g, eps = %g)" % (
            opt["lr"], opt["beta1"], opt["beta2"], opt["eps"])
    return "sgd(lr = %g, momentum = %g)" % (opt["lr"], opt["momentum"])


def data(rng, n=5):
    xs = rng.uniform(-1, 1, size=(n, 2, 7, 6))
    ts = np.eye(3)[rng.integers(0, 3, size=n)]
    rows = ", ".join("[%s] -> [%s]" % (", ".join(repr(float(v)) for v in x.ravel()),
                                       ", ".join("%g" % v for v in t)) for x, t in zip(xs, ts))
    return xs, ts, "[" + rows + "]"


def references():
    refs = [("numpy", numpy_sample)]
    try:
        import torch
        torch.set_default_dtype(torch.float64)
        refs.append(("torch", lambda w, x, t, m: torch_sample(torch, w, x, t, m)))
    except ImportError:
        print("torch is not installed: the NumPy reference only")
    return refs


def test_training_steps(nnc, tmp):
    rng = np.random.default_rng(12)
    xs, ts, rows = data(rng)
    optimizers = [
        {"kind": "sgd", "lr": 0.2, "momentum": 0.9},
        {"kind": "adam", "lr": 0.02, "beta1": 0.8, "beta2": 0.99, "eps": 1e-6},
    ]
    refs = references()
    for opt in optimizers:
        src = os.path.join(tmp, "cnn.nn")
        with open(src, "w") as f:
            f.write(MODEL % (rows, optimizer_text(opt)))
        f64 = [nnc, "--precision=f64", "--interp", src, "--"]
        run(f64 + ["--epochs", "0", "--save", "init.npz"], tmp)
        out = run(f64 + ["--save", "final.npz"], tmp).stdout
        init = dict(np.load(os.path.join(tmp, "init.npz")))
        got = dict(np.load(os.path.join(tmp, "final.npz")))
        final = re.search(r"^train: loss (\S+)", out, re.M)
        for name, fn in refs:
            want = train(fn, init, xs, ts, opt, epochs=2, batch=2, seed=5)
            for k in want:
                err = np.max(np.abs(got[k] - want[k]))
                moved = np.max(np.abs(want[k] - init[k]))
                if not err <= 1e-9 or not moved > 1e-3:
                    fail(f"{optimizer_text(opt)}: {k} differs from {name}'s by {err} (moved {moved})")
            loss = eval_loss(fn, want, xs, ts)
            if not final or abs(float(final.group(1)) - loss) > 1e-5 * max(1, loss):
                fail(f"{optimizer_text(opt)}: final train loss, want {name}'s {loss:.6g} "
                     f"(dropout off) in:\n{out}")
            print(f"{optimizer_text(opt)}: 6 steps equal {name}'s, final loss {loss:.6g}")


def test_masks_drop(nnc, tmp):
    """The masks are not all ones: the references above would agree with a mask-free
    interpreter only by accident, so check the fraction dropped is about p."""
    m = np.concatenate([mask(5, step, 0, s, P_DROP, 1000) for step in range(3) for s in range(2)])
    frac = np.mean(m == 0)
    if not abs(frac - P_DROP) < 0.03 or not np.all((m == 0) | (m == 1 / (1 - P_DROP))):
        fail(f"dropout masks: {frac} dropped, want about {P_DROP}")


if __name__ == "__main__":
    main("nnc-conv-interp-", [test_masks_drop, test_training_steps])
