#!/usr/bin/python3
"""./MODEL --plot FILE.svg (issue 15): the SVG is rendered by a real renderer (rsvg-convert,
librsvg2-bin) and the picture itself is checked: in each panel's plot area the curves'
colours are where the training says (deep_relu's loss falls, its accuracy ends near the
top, every param's gradient norm is drawn); a model without a test set draws no test
curve; the file is written whole or not at all."""
import os
import re
import struct
import subprocess
import sys
import zlib

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nnctest import fail, main, run  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(ROOT, "examples")
TRAIN, TEST = (31, 119, 180), (214, 39, 40)  # rt_plot.c's train and test colours
PARAM_COLORS = [TRAIN, (255, 127, 14), (44, 160, 44), TEST, (148, 103, 189), (140, 86, 75),
                (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]


def read_png(path):
    """The picture as an (h, w, 4) uint8 array: 8-bit RGB or RGBA, not interlaced (what
    rsvg-convert writes), decoded with zlib and the five PNG row filters."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        fail(f"{path} is not a PNG")
    at, idat, head = 8, b"", None
    while at < len(data):
        n, kind = struct.unpack(">I4s", data[at:at + 8])
        body = data[at + 8:at + 8 + n]
        if kind == b"IHDR":
            head = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        at += 12 + n
    w, h, depth, color, _, _, interlace = head
    if depth != 8 or color not in (2, 6) or interlace:
        fail(f"unexpected PNG format {head}")
    bpp = 4 if color == 6 else 3
    raw = zlib.decompress(idat)
    stride = w * bpp
    out = np.zeros((h, stride), dtype=np.uint8)
    prev = np.zeros(stride, dtype=np.int32)
    for y in range(h):
        kind = raw[y * (stride + 1)]
        line = np.frombuffer(raw, np.uint8, stride, y * (stride + 1) + 1).astype(np.int32)
        if kind == 0:
            cur = line
        elif kind == 2:
            cur = (line + prev) & 255
        elif kind == 1:  # Sub: a running sum per channel
            cur = (np.cumsum(line.reshape(w, bpp), axis=0) & 255).reshape(stride)
        else:
            cur = line.copy()
            for x in range(stride):
                a = cur[x - bpp] if x >= bpp else 0
                b = prev[x]
                if kind == 3:
                    cur[x] = (cur[x] + ((a + b) >> 1)) & 255
                else:
                    c = prev[x - bpp] if x >= bpp else 0
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    cur[x] = (cur[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        out[y] = cur
        prev = cur
    img = out.reshape(h, w, bpp)
    if bpp == 3:
        img = np.concatenate([img, np.full((h, w, 1), 255, np.uint8)], axis=2)
    return img


def render(svg, tmp):
    png = svg[:-4] + ".png"
    run(["rsvg-convert", "-f", "png", "-o", png, svg], tmp)
    with open(svg) as f:
        areas = [tuple(int(v) for v in m) for m in re.findall(
            r'<rect class="area" x="(\d+)" y="(\d+)" width="(\d+)" height="(\d+)"', f.read())]
    return read_png(png), areas


def mask(img, area, color, tol=40):
    """Pixels of the plot area near color (the curves' antialiased edges are not), with a
    margin above and below: a curve at the top or bottom straddles the frame."""
    x, y, w, h = area
    part = img[y - 3:y + h + 3, x + 2:x + w - 1, :3].astype(int)
    return (np.abs(part - np.array(color)).sum(axis=2) < tol)


def median_row(m, lo, hi):
    """Median y (0 = the area's top) of the mask's pixels in columns [lo, hi) of its width."""
    w = m.shape[1]
    ys, _ = np.nonzero(m[:, int(lo * w):int(hi * w)])
    if len(ys) == 0:
        fail(f"no curve pixels in columns {lo:.0%}-{hi:.0%}")
    return float(np.median(ys)) / m.shape[0]


def build(nnc, tmp, name):
    exe = os.path.join(tmp, name)
    run([nnc, os.path.join(EXAMPLES, name + ".nn"), "-o", exe], tmp)
    return exe


def test_deep_relu_picture(nnc, tmp):
    exe = build(nnc, tmp, "deep_relu")
    svg = os.path.join(tmp, "relu.svg")
    out = run([exe, "--plot", svg, "--save", os.path.join(tmp, "w.npz")], tmp).stdout
    if f"plotted {svg}" not in out:
        fail(f"no 'plotted' line:\n{out}")
    img, areas = render(svg, tmp)
    if len(areas) != 3:
        fail(f"expected loss, accuracy and gradient panels, got {len(areas)}")
    loss, acc, grad = areas
    # loss panel: both curves, the train loss high at the start and low at the end
    train = mask(img, loss, TRAIN)
    if not mask(img, loss, TEST).any():
        fail("no test loss curve")
    if not median_row(train, 0, 0.05) < median_row(train, 0.9, 1) - 0.3:
        fail("the train loss curve does not fall")
    # accuracy panel: deep_relu ends near 100%, the top of the area
    if not median_row(mask(img, acc, TRAIN), 0.9, 1) < 0.1:
        fail("the train accuracy does not end near 100%")
    if not mask(img, acc, TEST).any():  # dashed, under the train curve where they agree
        fail("no test accuracy curve")
    # gradient panel: each of the 10 first params' colour is drawn, across the epochs
    for k, color in enumerate(PARAM_COLORS):
        m = mask(img, grad, color)
        for lo in (0, 0.45, 0.9):
            if not m[:, int(lo * m.shape[1]):int((lo + 0.1) * m.shape[1])].any():
                fail(f"param {k}'s gradient norm is not drawn near {lo:.0%} of the epochs")
    with open(svg) as f:
        text = f.read()
    for label in ("h1.W", "z.b", "train loss", "test acc", "1e-", "epoch"):
        if label not in text:
            fail(f"the plot lacks {label!r}")


def test_no_test_set_no_accuracy(nnc, tmp):
    exe = build(nnc, tmp, "curve")
    svg = os.path.join(tmp, "curve.svg")
    run([exe, "--plot", svg, "--epochs", "20", "--quiet", "--save", os.path.join(tmp, "c.npz")], tmp)
    img, areas = render(svg, tmp)
    with open(svg) as f:
        text = f.read()
    has_test = "test loss" in text
    if has_test == (not mask(img, areas[0], TEST).any()):
        fail("the test curve is drawn exactly when the legend names it")
    if "accuracy (%)" in text:
        fail("curve (a regression) has no accuracy panel")
    if not mask(img, areas[0], TRAIN).any():
        fail("no train loss curve")


def test_whole_or_nothing(nnc, tmp):
    exe = build(nnc, tmp, "xor")
    # an unwritable plot stops the run before training, naming the file
    p = run([exe, "--plot", os.path.join(tmp, "no", "such", "dir", "x.svg")], tmp, code=1)
    if "x.svg" not in p.stderr or "epoch" in p.stdout:
        fail(f"expected a message naming the plot before any epoch:\n{p.stdout}{p.stderr}")
    # a run stopped by a NaN (in epoch 8) still plots the epochs before it
    nan = os.path.join(tmp, "nan")
    run([nnc, os.path.join(ROOT, "tests", "nan", "log_zero.nn"), "-o", nan], tmp)
    svg = os.path.join(tmp, "nan.svg")
    run([nan, "--plot", svg, "--quiet", "--save", os.path.join(tmp, "n.npz")], tmp, code=1)
    with open(svg) as f:
        text = f.read()
    if not text.rstrip().endswith("</svg>") or ": 7 epochs<" not in text:
        fail(f"the plot of a stopped run is not whole, or not of its 7 epochs:\n{text[:300]}")
    if [f for f in os.listdir(tmp) if ".tmp" in f]:
        fail("a temporary was left behind")


def test_help_and_no_epochs(nnc, tmp):
    exe = build(nnc, tmp, "xor")
    if "--plot" not in run([exe, "--help"], tmp).stdout:
        fail("--help does not list --plot")
    p = run([exe, "--epochs", "0", "--plot", "none.svg", "--save", "w0.npz"], tmp)
    if "no plot" not in p.stderr or os.path.exists(os.path.join(tmp, "none.svg")):
        fail(f"--epochs 0 --plot: expected a note and no file:\n{p.stderr}")


if __name__ == "__main__":
    main("nnc-plot-", [test_deep_relu_picture, test_no_test_set_no_accuracy, test_whole_or_nothing,
                     test_help_and_no_epochs])
