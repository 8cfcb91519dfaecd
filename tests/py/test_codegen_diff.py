#!/usr/bin/python3
"""Differential test of the LLVM code generator against the reference interpreter.

Every model of tests/grad, tests/check, tests/conv, tests/codegen and the small examples is trained
for a few epochs twice with the same seed and flags: by the compiled executable and by
`nnc --interp` (plain f64 evaluation of the same IR through the same runtime). The saved
weights must agree (f64: rtol 1e-9; f32: rtol 1e-4) and so must the printed losses.
Models without data in a train block get a small random csv with --data; the batch size
leaves a short last batch. tests/codegen (models written to cover every op, rank-0
broadcasts, all matmul shapes, softmax on rank 2, fused losses, momentum and adam) is also
compared at -O0 vs -O2 and, outside sanitizer builds, in f32 through `nnc --run`.

The test cannot pass by leaving things out: a model of tests/grad or tests/check is left
out only when `--emit=ir` says the file defines no model (a case whose RUN line runs
another file), any other compile error fails, and at least MIN_SHARE of each folder (and
MIN_MODELS models) must take part. A run that exits nonzero fails even when the other
side fails the same way, unless the model is listed in EXPECTED_ERRORS with the message
both must print.
"""
import argparse
import concurrent.futures
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np

from nnctest import sanitized

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = ["xor", "curve", "weight_decay", "spirals", "deep_relu", "deep_sigmoid"]
MIN_SHARE = 0.75
MIN_MODELS = {"grad": 30, "check": 8, "conv": 5}
NO_MODEL = "error: the file defines no model"
# Models whose training is meant to stop with an error: relative path -> a piece of the
# message both sides must print.
EXPECTED_ERRORS = {
    "tests/check/missing_data.nn": "no_such_file.csv: error: cannot open",
    "tests/check/inf_loss.nn": "the loss became infinite in epoch 1, batch 1",
    "tests/check/nan_loss.nn": "the loss became nan in epoch 1, batch 1",
    # its pools' --check model on random data at the default lr diverges in both
    "tests/conv/check_pools.nn": "the loss became infinite in epoch 2, batch 2 of 3",
}


class Failure(Exception):
    pass


def run(cmd, cwd, ok_codes=(0,)):
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)
    if p.returncode not in ok_codes:
        raise Failure(f"{' '.join(cmd)} exited {p.returncode}:\n{p.stdout}{p.stderr}")
    return p


def dims_of(src, kind):
    """Element count of the model's input or target, from its declaration (0 when absent)."""
    m = re.search(r"^\s*%s\s+[\w.]+\s*(\[([^\]]*)\])?" % kind, src, re.M)
    if not m:
        return 0
    if not m.group(2):
        return 1
    n = 1
    for d in m.group(2).split(","):
        n *= int(d)
    return n


def random_csv(path, src, rng, rows=7):
    cols = dims_of(src, "input") + dims_of(src, "target")
    data = rng.uniform(0.1, 0.9, size=(rows, cols))
    with open(path, "w") as f:
        for row in data:
            f.write(",".join("%.17g" % v for v in row) + "\n")


def report_lines(out):
    """Stdout lines with their numbers, without the speed and the weights file name."""
    lines = []
    for line in out.splitlines():
        if line.startswith("saved "):
            continue
        line = re.sub(r"\s+\S+ samples/s", "", line)
        nums = [float(x) for x in re.findall(r"-?\d+\.?\d*(?:e[-+]?\d+)?", line)]
        lines.append((re.sub(r"-?\d+\.?\d*(?:e[-+]?\d+)?", "#", line), nums))
    return lines


def same_reports(a, b, tol):
    la, lb = report_lines(a), report_lines(b)
    if len(la) != len(lb):
        return False
    for (ta, na), (tb, nb) in zip(la, lb):
        if ta != tb or (tol != np.inf and not np.allclose(na, nb, rtol=tol, atol=2e-6)):
            return False
    return True


def compare_weights(fa, fb, rtol, atol):
    a, b = np.load(fa), np.load(fb)
    if sorted(a.files) != sorted(b.files):
        raise Failure(f"keys differ: {a.files} vs {b.files}")
    for k in a.files:
        if a[k].shape != b[k].shape or a[k].dtype != b[k].dtype:
            raise Failure(f"{k}: {a[k].dtype}{a[k].shape} vs {b[k].dtype}{b[k].shape}")
        if not np.allclose(a[k], b[k], rtol=rtol, atol=atol):
            err = np.max(np.abs(a[k].astype(np.float64) - b[k]))
            raise Failure(f"param {k} differs by up to {err:g}")


class Case:
    def __init__(self, path, epochs):
        self.path = path
        self.name = os.path.relpath(path, ROOT)
        self.epochs = epochs
        with open(path) as f:
            self.src = f.read()
        self.has_data = re.search(r"^\s*data\s*=", self.src, re.M) is not None


def train_args(case, tmp, save):
    args = ["--epochs", str(case.epochs), "--save", save]
    if not case.has_data:
        args += ["--data", os.path.join(tmp, "data.csv"), "--batch", "3"]
    return args


def compiled(nnc, case, tmp, tag, prec, opt, how):
    """Trains with generated code: an executable (how == 'exe') or nnc --run."""
    save = os.path.join(tmp, tag + ".npz")
    flags = ["--precision=" + prec, "-O%d" % opt]
    if how == "exe":
        exe = os.path.join(tmp, tag + ".exe")
        run([nnc] + flags + [case.path, "-o", exe], tmp)
        p = run([exe] + train_args(case, tmp, save), tmp, (0, 1))
    else:
        p = run([nnc, "--run"] + flags + [case.path, "--"] + train_args(case, tmp, save), tmp, (0, 1))
    return p, save


def check(nnc, case, prec, opt, how, seed):
    tmp = tempfile.mkdtemp(prefix="nnc-cgdiff-")
    try:
        if not case.has_data:
            random_csv(os.path.join(tmp, "data.csv"), case.src, np.random.default_rng(seed))
        ref_save = os.path.join(tmp, "ref.npz")
        ref = run([nnc, "--interp", "--precision=" + prec, case.path, "--"]
                  + train_args(case, tmp, ref_save), tmp, (0, 1))
        got, save = compiled(nnc, case, tmp, "gen", prec, opt, how)
        both_failed(case, got, ref)
        if got.returncode != ref.returncode:
            raise Failure(f"exit {got.returncode}, interpreter {ref.returncode}:\n{got.stderr}\n{ref.stderr}")
        tol = 1e-9 if prec == "f64" else 1e-4
        # Models without a target (an autoencoder) report their loss too: it must agree.
        if not same_reports(got.stdout, ref.stdout, tol):
            raise Failure(f"printed losses differ:\n--- generated\n{got.stdout}--- interpreter\n{ref.stdout}")
        if os.path.exists(ref_save):
            compare_weights(save, ref_save, tol, 1e-12 if prec == "f64" else 1e-5)
        if opt == 2 and how == "exe" and case.name.startswith("tests/codegen"):
            got0, save0 = compiled(nnc, case, tmp, "o0", prec, 0, how)
            both_failed(case, got0, got)
            compare_weights(save0, save, 1e-12, 1e-14)
        return None
    except Failure as e:
        return f"{case.name} ({prec}, -O{opt}, {how}): {e}"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def both_failed(case, got, ref):
    """Two runs that fail alike do not agree, unless the failure is the expected one."""
    if got.returncode == 0 and ref.returncode == 0:
        return
    want = EXPECTED_ERRORS.get(case.name)
    if want and got.returncode == ref.returncode == 1 and want in got.stderr and want in ref.stderr:
        return
    raise Failure(f"exit {got.returncode}, interpreter {ref.returncode}"
                  + (f" (expected exit 1 with {want!r} on both)" if want else "")
                  + f":\n{got.stdout}{got.stderr}\n--- interpreter\n{ref.stdout}{ref.stderr}")


def models_that_compile(nnc, folder):
    """The models of tests/FOLDER; a failure unless each compiles or defines no model."""
    paths = sorted(glob.glob(os.path.join(ROOT, "tests", folder, "*.nn")))
    ok, bad = [], []
    for path in paths:
        p = subprocess.run([nnc, "--emit=ir", path], capture_output=True, text=True)
        if p.returncode == 0:
            ok.append(path)
        elif NO_MODEL not in p.stderr:
            bad.append(f"{os.path.relpath(path, ROOT)}: {p.stderr.strip()}")
    if bad:
        sys.exit("FAIL: models that do not compile:\n" + "\n".join(bad))
    floor = max(MIN_MODELS[folder], int(MIN_SHARE * len(paths)))
    if len(ok) < floor:
        sys.exit(f"FAIL: only {len(ok)} of {len(paths)} models of tests/{folder} compile "
                 f"(at least {floor} must)")
    return ok


class FakeRun:
    def __init__(self, code, out, err):
        self.returncode, self.stdout, self.stderr = code, out, err


def self_test():
    """The comparison fails what it must: two runs failing alike, an exit status apart."""
    case = Case(os.path.join(ROOT, "examples", "xor.nn"), 1)
    crash = FakeRun(1, "", "xor: error: cannot open data.csv\n")
    for got, ref, what in ((crash, crash, "two identical failures"),
                           (FakeRun(139, "", ""), FakeRun(139, "", ""), "two identical crashes"),
                           (FakeRun(0, "", ""), crash, "a failure on one side")):
        try:
            both_failed(case, got, ref)
            if got.returncode == ref.returncode:
                sys.exit(f"FAIL: self-test: {what} count as agreement")
        except Failure:
            pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nnc", required=True)
    ap.add_argument("--build")
    ap.add_argument("-j", type=int, default=max(2, os.cpu_count() or 2))
    args = ap.parse_args()
    nnc = os.path.abspath(args.nnc)
    self_test()

    grad = models_that_compile(nnc, "grad")
    checks = models_that_compile(nnc, "check")
    conv = models_that_compile(nnc, "conv")
    own = sorted(glob.glob(os.path.join(ROOT, "tests", "codegen", "*.nn")))
    examples = [os.path.join(ROOT, "examples", e + ".nn") for e in EXAMPLES]
    if len(own) < 5:
        sys.exit("FAIL: tests/codegen models are missing")

    # A sanitizer build runs the instrumented interpreter and compiler several times slower
    # and repeats what the normal build checks in full: there it takes half the models made
    # to cover every op (tests/codegen) and a tenth of the others, each once.
    quick = sanitized(args.build)
    if quick:
        grad, checks, conv, own = grad[::10], checks[::10], conv[::10], own[::2]
    jobs = []  # (case, precision, -O, how)
    for path in grad:
        jobs.append((Case(path, 2), "f64", 0, "exe"))
    for path in checks + own + conv:
        jobs.append((Case(path, 3), "f64", 2, "exe"))
    if not quick:
        for path in own + checks[:3] + examples[:1]:
            jobs.append((Case(path, 3), "f32", 2, "run"))
        for path in examples:
            jobs.append((Case(path, 1), "f64", 2, "exe"))

    failures = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.j) as pool:
        futures = [pool.submit(check, nnc, c, prec, opt, how, i) for i, (c, prec, opt, how) in enumerate(jobs)]
        for f in futures:
            if f.result():
                failures.append(f.result())
    for f in failures:
        print("FAIL:", f)
    print(f"{len(jobs) - len(failures)} of {len(jobs)} differential runs agree "
          f"({len(grad)} grad, {len(checks)} check, {len(conv)} conv, {len(own)} codegen, "
          f"{len(examples)} examples)")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
