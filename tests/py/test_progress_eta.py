#!/usr/bin/python3
"""On a terminal the batch progress line shows the time left in the epoch (issue 15): the
executable runs with stderr on a pseudo-terminal, on epochs long enough for the progress
line (it is redrawn at most every 0.1 s); each line shows `Ns left`, the estimates fall
within an epoch, the line is cleared before the epoch line, and a pipe gets none of it."""
import os
import pty
import re
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nnctest import fail, main, run  # noqa: E402

MODEL = """model slow {
    input  x[64]
    target t[1]
    h1 = dense(x, 256, relu)
    h2 = dense(h1, 256, relu)
    y  = dense(h2, 1)
    loss = mse(y, t)
}

train slow {
    data      = csv("slow.csv")
    epochs    = 2
    batch     = 1
    optimizer = sgd(lr = 0.001)
}
"""


def on_pty(cmd, cwd):
    """stdout (a pipe) and stderr (a terminal) of cmd."""
    master, slave = pty.openpty()
    p = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    err = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        err += chunk
    out = p.stdout.read()
    p.wait()
    os.close(master)
    if p.returncode != 0:
        fail(f"{cmd} exited {p.returncode}:\n{out.decode()}{err.decode()}")
    return out.decode(), err.decode(errors="replace")


def test_time_left(nnc, tmp):
    rows = 20000  # under the sanitizers too: the generated code is as fast there, and an
    # epoch must outlast the 0.1 s between redraws
    data = np.random.default_rng(1).uniform(-1, 1, (rows, 65))
    np.savetxt(os.path.join(tmp, "slow.csv"), data, delimiter=",", fmt="%.4f")
    with open(os.path.join(tmp, "slow.nn"), "w") as f:
        f.write(MODEL)
    run([nnc, "slow.nn", "-o", "slow"], tmp)
    out, err = on_pty(["./slow", "--threads", "1"], tmp)
    shown = re.findall(r"\repoch (\d+)  batch (\d+)/(\d+)  loss \S+  (?:(\d+)m)?(\d+(?:\.\d)?)s left", err)
    if len(shown) < 2:
        fail(f"no progress lines with the time left on the terminal:\n{err!r}")
    for epoch in ("1", "2"):
        left = [int(m or 0) * 60 + float(s) for e, _, _, m, s in shown if e == epoch]
        if len(left) >= 3 and not left[-1] <= left[0]:
            fail(f"the time left grows within epoch {epoch}: {left}")
    if not re.search(r"\r {79}\r", err):
        fail(f"the progress line is not cleared:\n{err[-300:]!r}")
    if "left" in out or not re.search(r"^epoch 2 ", out, re.M):
        fail(f"stdout (a pipe) should have only the epoch lines:\n{out}")
    plain = run(["./slow", "--threads", "1", "--epochs", "1"], tmp)
    if "left" in plain.stderr:
        fail("the progress line went to a pipe")


if __name__ == "__main__":
    main("nnc-eta-", [test_time_left])
