#!/usr/bin/python3
"""The nnc command line as spec section 6 states it: default output names, -o for text
kinds, file modes, usage errors."""
import argparse
import os
import stat
import subprocess
import sys
import tempfile

MODEL = """model tiny {
    input x[2]
    target t[1]
    param W[1, 2] = ones
    loss = mse(W @ x, t)
}
train tiny { data = [[1, 2] -> [3]] epochs = 1 }
"""


def run(nnc, args, cwd):
    return subprocess.run([nnc] + args, cwd=cwd, capture_output=True, text=True, timeout=120)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nnc", required=True)
    ap.add_argument("--build")
    nnc = os.path.abspath(ap.parse_args().nnc)
    failures, checks = [], [0]

    def expect(cond, what):
        checks[0] += 1
        print(("ok: " if cond else "FAIL: ") + what)
        if not cond:
            failures.append(what)

    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "tiny.nn"), "w") as f:
            f.write(MODEL)
        os.umask(0o022)
        r = run(nnc, ["--emit=obj", "tiny.nn"], tmp)
        obj = os.path.join(tmp, "tiny.o")
        expect(r.returncode == 0 and os.path.exists(obj), "--emit=obj writes MODEL.o")
        expect(stat.S_IMODE(os.stat(obj).st_mode) == 0o644, "the object has mode 0644 under umask 022")
        r = run(nnc, ["tiny.nn"], tmp)
        exe = os.path.join(tmp, "tiny")
        expect(r.returncode == 0 and os.access(exe, os.X_OK), "plain nnc MODEL.nn writes ./MODEL, executable")
        r = run(nnc, ["--emit=ir", "tiny.nn", "-o", "tiny.ir"], tmp)
        with open(os.path.join(tmp, "tiny.ir")) as f:
            text = f.read()
        expect(r.returncode == 0 and r.stdout == "" and "W @ x" in text, "-o takes a text kind's output")
        expect(not [n for n in os.listdir(tmp) if ".tmp" in n], "no temporary file is left behind")
        r = run(nnc, ["--bogus", "tiny.nn"], tmp)
        expect(r.returncode == 1 and "unknown option '--bogus'" in r.stderr, "an unknown option is an error")
        r = run(nnc, ["missing.nn"], tmp)
        expect(r.returncode == 1 and "cannot open 'missing.nn'" in r.stderr, "a missing input is an error")
        r = run(nnc, ["--emit=ir", "tiny.nn", "-o", "no/such/dir/x.ir"], tmp)
        expect(r.returncode == 1 and "cannot write" in r.stderr, "an unwritable output is an error")
        r = run(nnc, ["--version"], tmp)
        expect(r.returncode == 0 and r.stdout.startswith("nnc "), "--version")
        r = run(nnc, ["--help"], tmp)
        expect(r.returncode == 0 and "--emit=KIND" in r.stdout, "--help")
    print(f"{checks[0] - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
