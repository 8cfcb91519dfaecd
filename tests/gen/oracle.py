"""oracle.py - runs one generated program through every path of nnc and says whether they agree.

For a program (its .nn text, data files and trainer flags) in a fresh folder:

  emit     `nnc --emit=grad -O0`, `--emit=ast` and `--emit=ir` exit 0 with some output
           (emit1: the first only)
  check    `nnc --check` exits 0: every symbolic gradient matches central differences
           (elements whose step crosses a kink are skipped by the checker itself)
  interp   `nnc --interp`: the reference (f64 maths through the same runtime); it may only
           exit 0, or 1 for a NaN/inf stop
  O0, O2   the executable at -O0 and -O2, with --threads 1 (and the program's --cpu and
           --cpu-features, when the host runs what they make)
  run      `nnc --run` (the JIT; at -O2 or the program's run_opt)
  threads  the -O0 and -O2 executables again with --threads 2: the same .npz bytes, the
           same report

Each compiled trainer must agree with the interpreter: the same exit status and messages,
the same report lines with the same numbers, the same --log rows, the same weights, where
"the same number" is within the tolerance of the precision:

  f64: rtol 1e-9 (atol 1e-12 for weights; printed numbers: one unit in their last printed
       digit on top; accuracy: one sample, see acc_tolerance). Two f64 evaluations of the same maths in another order differ by a
       few ulps a step (~1e-15); nothing in a few steps amplifies that to 1e-9 unless the
       code is wrong.
  f32: rtol 2e-3, atol 2e-4 (weights and losses; accuracy: one sample). Only programs
       without kinks are compared in f32 (gendraw), so every quantity is a smooth function
       of the data and weights. The compiled code rounds every intermediate to f32
       (u = 6e-8); the interpreter rounds only what it stores. f32 programs are small
       (no sum of more than 4096 terms) and keep tanh and sigmoid out of saturation
       (arguments within +-4, scaled rather than squashed), so a gradient element is off
       by ~16u times the size G of the terms it sums (~1e-6 G; where terms cancel, as in
       the gradient of a softmax, that is not relative to the element). A big f32 program
       (a 300 x 300 product of saturated tanh) put a gradient norm 0.4% off. A step turns that
       into lr * 1e-6 G, times 1 / (1 - mu) <= 10 with momentum, or 1e-6 G * lr / eps with
       adam; f32 programs draw mu <= 0.9, adam's eps = 0.1 (lr / eps <= 0.5) and 1-2 epochs
       of <= 40 samples (<= 80 steps): <= 4e-5 G in all, under the tolerance for G <= 5.
       Measured over thousands of programs the largest difference is a few percent of the
       tolerance (gen.py prints it). The generator found the case that set these limits:
       adam with eps = 1e-4 (lr / eps = 200) over 10 epochs put a weight 0.3% off.
  Adam divides by sqrt(v) + eps: the generator uses eps >= 1e-4 so that a gradient which
  is rounding noise (a structural zero) stays a noise-sized step.

A failure is (stage, kind, detail); (stage, kind) is its signature, which the reducer keeps.
"""
import os
import re
import shutil
import subprocess
import tempfile

import numpy as np

import genprint

STAGES = ("emit", "check", "interp", "O0", "O2", "run", "threads")
EMITS = (["--emit=grad", "-O0"], ["--emit=ast"], ["--emit=ir"])
# Each nnc process costs ~0.07 s of CPU to start (libLLVM): the suite's batch of small
# programs prints only the raw gradient (which lowers and differentiates too).
QUICK_STAGES = ("emit1",) + STAGES[1:]
TIMEOUT = 120
# The largest weight difference seen, as a share of the tolerance, by precision: how
# much room the tolerance leaves (gen.py prints it).
WORST = {"f32": 0.0, "f64": 0.0}


class Failure(Exception):
    def __init__(self, stage, kind, detail):
        super().__init__("%s: %s: %s" % (stage, kind, detail))
        self.stage, self.kind, self.detail = stage, kind, detail

    def signature(self):
        return (self.stage, self.kind)


def tolerance(precision):
    """(rtol, atol) of weights and reported numbers."""
    return (1e-9, 1e-12) if precision == "f64" else (2e-3, 2e-4)


# ---- running commands ----

class Proc:
    def __init__(self, code, out, err):
        self.code, self.out, self.err = code, out, err


def run(cmd, cwd, stage):
    try:
        p = subprocess.run(cmd, cwd=cwd, capture_output=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        raise Failure(stage, "timeout", " ".join(cmd))
    out = p.stdout.decode("utf-8", "replace")
    err = p.stderr.decode("utf-8", "replace")
    if p.returncode < 0 or p.returncode > 1:
        raise Failure(stage, "crash %d" % p.returncode, "%s\n%s%s" % (" ".join(cmd), out, err[-3000:]))
    return Proc(p.returncode, out, err)


# What each --cpu level needs of the host (LLVM's x86-64-vN), as /proc/cpuinfo names it.
CPU_NEEDS = {"x86-64": set(), "x86-64-v2": {"sse4_2", "popcnt"},
             "x86-64-v3": {"sse4_2", "popcnt", "avx2", "fma", "bmi2", "movbe", "f16c"},
             "x86-64-v4": {"sse4_2", "popcnt", "avx2", "fma", "bmi2", "movbe", "f16c",
                           "avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}}


def host_flags():
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"^flags\s*:(.*)$", f.read(), re.M)
        return set(m.group(1).split()) if m else set()
    except OSError:
        return set()


HOST = host_flags()


def cpu_flags(run):
    """--cpu and --cpu-features of a job, left out when the host cannot run the result."""
    cpu, feats = run.get("cpu"), run.get("cpu_features")
    if cpu and not CPU_NEEDS.get(cpu, {"?"}) <= HOST:
        return []
    added = {f[1:] for f in (feats or "").split(",") if f.startswith("+")}
    if feats and not added <= HOST:
        feats = None
    return (["--cpu=" + cpu] if cpu else []) + (["--cpu-features=" + feats] if feats else [])


def compile_to(nnc, sel, src, exe, flags, cwd, stage):
    p = run([nnc] + sel + flags + [src, "-o", exe], cwd, stage)
    if p.code != 0:
        raise Failure(stage, "rejected", p.err[-3000:])


# ---- comparing reports ----

NUM = re.compile(r"-?(?:inf|nan|\d+\.?\d*(?:e[-+]?\d+)?)")


def printed_ulp(s):
    """One unit in the last printed digit of the number s; 0 for an integer (an epoch,
    a batch number, a count), which is exact."""
    m = re.match(r"-?\d+(?:\.(\d*))?(?:e([-+]?\d+))?$", s)
    if not m or (m.group(1) is None and m.group(2) is None):
        return 0.0
    return 10.0 ** (int(m.group(2) or 0) - len(m.group(1) or ""))


def report(out):
    """Stdout as (line pattern, numbers) without speeds and the weights file's name."""
    lines = []
    for line in out.splitlines():
        if line.startswith("saved "):
            continue
        line = re.sub(r"\s+\S+ samples/s", "", line)
        lines.append((NUM.sub("#", line), NUM.findall(line)))
    return lines


def is_int(s):
    return re.match(r"-?\d+$", s) is not None


def near(a, b, rtol, atol):
    """Printed numbers a and b (text) agree."""
    x, y = float(a), float(b)
    if np.isnan(x) or np.isnan(y) or np.isinf(x) or np.isinf(y):
        return a == b
    return abs(x - y) <= rtol * max(abs(x), abs(y)) + atol + max(printed_ulp(a), printed_ulp(b))


def same_report(got, ref, precision, nsamples):
    rtol, atol = tolerance(precision)
    g, r = report(got), report(ref)
    if len(g) != len(r):
        return "%d report lines, interpreter %d" % (len(g), len(r))
    for (pg, ng), (pr, nr) in zip(g, r):
        if pg != pr:
            return "line %r, interpreter %r" % (pg, pr)
        for i, (a, b) in enumerate(zip(ng, nr)):
            acc = is_acc(pg, i)
            if acc:
                ok = near(a, b, 0, acc_tolerance(precision, nsamples))
            else:   # an epoch or a batch number: exact
                ok = a == b if is_int(a) or is_int(b) else near(a, b, rtol, atol)
            if not ok:
                return "number %d of %r: %s, interpreter %s" % (i + 1, pr, a, b)
    return None


def acc_tolerance(precision, nsamples):
    """An accuracy may differ by one sample: it is an argmax (or the 0.5 threshold) of the
    prediction, and where classes tie, two right evaluations one rounding apart pick
    different ones. Ties are common, not only in f32: params that start equal (zeros,
    ones, const) give equal logits, and after a step one side may keep the exact tie and
    the other be 4e-19 off (found by the generator, f64). Losses, log rows and weights
    are still compared within the tolerance."""
    return 100.0 / max(1, nsamples)


def is_acc(pattern, index):
    """Whether the index-th number of a report line is an accuracy (followed by %)."""
    pieces = pattern.split("#")
    return index + 1 < len(pieces) and pieces[index + 1].startswith("%")


def same_log(got, ref, precision, nsamples):
    """--log files: the same header and rows, the seconds column left out."""
    rtol, atol = tolerance(precision)
    g = open(got).read().splitlines()
    r = open(ref).read().splitlines()
    if len(g) != len(r) or not g or g[0] != r[0]:
        return "log: %d rows %r, interpreter %d rows %r" % (len(g), g[:1], len(r), r[:1])
    cols = r[0].split(",")
    for rg, rr in zip(g[1:], r[1:]):
        a, b = rg.split(","), rr.split(",")
        if len(a) != len(b):
            return "log row %r, interpreter %r" % (rg, rr)
        norms = [abs(float(v)) for c, v in zip(cols, b) if c.startswith("grad_norm") and v]
        for c, x, y in zip(cols, a, b):
            if c == "seconds" or (x == "" and y == ""):
                continue
            if x == "" or y == "":
                ok = False
            elif c == "epoch":
                ok = x == y
            elif c in ("acc", "test_acc"):
                ok = near(x, y, 0, acc_tolerance(precision, nsamples))
            elif c.startswith("grad_norm") and precision == "f64":
                # a gradient that is rounding noise (a structural zero) has a noise-sized norm
                ok = near(x, y, rtol, 1e-9 * max(norms + [1.0]))
            else:
                ok = near(x, y, rtol, atol)
            if not ok:
                return "log column %s: %s, interpreter %s (row %r)" % (c, x, y, rr)
    return None


def same_weights(got, ref, precision):
    rtol, atol = tolerance(precision)
    a, b = np.load(got), np.load(ref)
    if sorted(a.files) != sorted(b.files):
        return "keys %s, interpreter %s" % (sorted(a.files), sorted(b.files))
    for k in sorted(a.files):
        x, y = a[k], b[k]
        if x.shape != y.shape or x.dtype != y.dtype:
            return "%s: %s%s, interpreter %s%s" % (k, x.dtype, x.shape, y.dtype, y.shape)
        x, y = x.astype(np.float64), y.astype(np.float64)
        if x.size and np.isfinite(x).all() and np.isfinite(y).all():
            share = float(np.max(np.abs(x - y) / (atol + rtol * np.abs(y))))
            WORST[precision] = max(WORST[precision], share)
        bad = ~((np.abs(x - y) <= atol + rtol * np.abs(y)) | (x == y))
        if bad.any():
            i = np.argmax(bad)
            return "param %s differs in %d of %d elements (first: %r vs %r)" % (
                k, int(bad.sum()), x.size, x.flat[i], y.flat[i])
    return None


def normalise_err(err):
    """Run-time messages: the compiler's warnings (nnc --interp and --run compile first)
    and the compiled code's note naming the first non-finite value left out, the
    program's name (an executable's path or nnc) made one."""
    lines, skip = [], 0
    for line in err.splitlines():
        if skip:
            skip -= 1
        elif re.match(r"^\S+:\d+:\d+: warning: ", line):
            skip = 2    # the source line and the caret
        elif re.match(r"^\S+: note: first non-finite value: ", line):
            pass        # compiled code only: the interpreter has no checked path
        else:
            lines.append(re.sub(r"^\S+(?=: )", "PROG", line))
    return "\n".join(lines)


# ---- one program ----

class Job:
    """A program made concrete: its text, the files beside it, how it is trained.
    run: the trainer flags (gendraw.run_options), with 'data'/'test' naming override files."""

    def __init__(self, text, files, precision, run, model=None, nsamples=1):
        self.text, self.files, self.precision = text, files, precision
        self.run, self.model, self.nsamples = run, model, nsamples

    @staticmethod
    def of(prog, prefix=""):
        text, files = genprint.program_text(prog, prefix)
        m = prog.model
        run = dict(prog.run)
        for key, spec, salt in (("data", m.data, "alt"), ("test", m.test, "alttest")):
            if run.get(key):
                n = run[key]
                run[key] = genprint.override_file(prog, m, spec, salt, n, prefix, files)
        counts = [m.data["n"]] + ([m.test["n"]] if m.test else [])
        counts += [prog.run[k] for k in ("data", "test") if prog.run.get(k)]
        return Job(text, files, prog.precision, run,
                   m.name if len(prog.models) > 1 else None, min(counts))


class Setup:
    """A job written to a fresh folder, and the flags each trainer gets."""

    def __init__(self, job, tmp):
        self.job, self.tmp = job, tmp
        self.src = os.path.join(tmp, "prog.nn")
        with open(self.src, "w") as f:
            f.write(job.text)
        for name, data in job.files.items():
            with open(os.path.join(tmp, name), "wb") as f:
                f.write(data)
        self.sel = ["--model=" + job.model] if job.model else []
        self.prec = ["--precision=" + job.precision]
        self.cpu = cpu_flags(job.run)

    def args(self, tag, threads=None):
        ro = self.job.run
        a = []
        for key in ("epochs", "batch", "lr", "seed", "data", "test"):
            if ro.get(key) is not None and ro.get(key) is not False:
                a += ["--" + key, str(ro[key])]
        if ro.get("quiet"):
            a.append("--quiet")
        if ro.get("load"):
            a += ["--load", "init.npz"]
        if ro.get("log"):
            a += ["--log", tag + ".csv"]
        if threads:
            a += ["--threads", str(threads)]
        return a + ["--save", tag + ".npz"]


def agree(s, p, ref, tag, stage):
    """The trainer tagged `tag` (finished as p) against the interpreter."""
    job = s.job
    if p.code != ref.code:
        raise Failure(stage, "exit status", "exit %d, interpreter %d:\n%s\n--- interpreter\n%s"
                      % (p.code, ref.code, p.out + p.err, ref.out + ref.err))
    if normalise_err(p.err) != normalise_err(ref.err):
        raise Failure(stage, "stderr", "%s\n--- interpreter\n%s" % (p.err, ref.err))
    why = same_report(p.out, ref.out, job.precision, job.nsamples)
    if why:
        raise Failure(stage, "report", "%s\n--- generated\n%s--- interpreter\n%s" % (why, p.out, ref.out))
    if job.run.get("log"):
        why = same_log(os.path.join(s.tmp, tag + ".csv"), os.path.join(s.tmp, "ref.csv"),
                       job.precision, job.nsamples)
        if why:
            raise Failure(stage, "log", why)
    saved, ref_saved = os.path.join(s.tmp, tag + ".npz"), os.path.join(s.tmp, "ref.npz")
    if os.path.exists(saved) != os.path.exists(ref_saved):
        raise Failure(stage, "saved", "%s saved: %s, interpreter: %s" % (
            tag, os.path.exists(saved), os.path.exists(ref_saved)))
    if os.path.exists(ref_saved):
        why = same_weights(saved, ref_saved, job.precision)
        if why:
            raise Failure(stage, "weights", why)


def same_threads(s, exe, tag, p1):
    """--threads 2 gives the same bytes as --threads 1."""
    p2 = run([exe] + s.args(tag + "_t2", threads=2), s.tmp, "threads")
    a, b = os.path.join(s.tmp, tag + ".npz"), os.path.join(s.tmp, tag + "_t2.npz")
    if p1.code != p2.code or report(p1.out) != report(p2.out):
        raise Failure("threads", "report", "--threads 1:\n%s%s--threads 2:\n%s%s" % (
            p1.out, p1.err, p2.out, p2.err))
    if os.path.exists(a) and open(a, "rb").read() != open(b, "rb").read():
        raise Failure("threads", "bytes", "%s: .npz bytes differ between --threads 1 and 2" % tag)


def emit_stage(nnc, s, count):
    for flags in EMITS[:count]:
        p = run([nnc] + s.sel + flags + [s.src], s.tmp, "emit")
        if p.code != 0 or not p.out:
            raise Failure("emit", "rejected" if p.code else "no output",
                          "%s: exit %d\n%s" % (" ".join(flags), p.code, p.err[-3000:]))


def check_stage(nnc, s):
    p = run([nnc] + s.sel + ["--check", s.src], s.tmp, "check")
    if p.code != 0:
        kind = "rejected" if re.search(r"^\S+:\d+:\d+: error: ", p.err, re.M) else "gradient"
        raise Failure("check", kind, p.out[-3000:] + p.err[-2000:])


def interp_stage(nnc, s):
    if s.job.run.get("load"):
        init = [nnc] + s.sel + s.prec + ["--interp", s.src, "--", "--epochs", "0", "--save", "init.npz"]
        if "seed" in s.job.run:
            init[-4:-4] = ["--seed", str(s.job.run["seed"])]
        p = run(init, s.tmp, "interp")
        if p.code != 0:
            raise Failure("interp", "init", p.err[-3000:])
    p = run([nnc] + s.sel + s.prec + ["--interp", s.src, "--"] + s.args("ref"), s.tmp, "interp")
    if p.code != 0 and not re.search(r"\b(NaN|nan|infinite|inf)\b", p.err):
        raise Failure("interp", "exit %d" % p.code, p.err[-3000:])
    return p


def exe_stage(nnc, s, ref, opt, threads):
    tag = "o%d" % opt
    exe = os.path.join(s.tmp, tag)
    stage = "O%d" % opt
    compile_to(nnc, s.sel, s.src, exe, s.prec + s.cpu + ["-O%d" % opt], s.tmp, stage)
    p = run([exe] + s.args(tag, threads=1), s.tmp, stage)
    agree(s, p, ref, tag, stage)
    if threads:
        same_threads(s, exe, tag, p)


def run_stage(nnc, s, ref):
    opt = s.job.run.get("run_opt")
    flags = s.prec + s.cpu + (["-O%d" % opt] if opt is not None else [])
    p = run([nnc] + s.sel + flags + ["--run", s.src, "--"] + s.args("jit"), s.tmp, "run")
    agree(s, p, ref, "jit", "run")


def check_program(nnc, prog, stages=STAGES):
    """None when every path agrees for a Program, else the first Failure."""
    return check_job(nnc, Job.of(prog), stages)


def check_job(nnc, job, stages=STAGES):
    """None when every path agrees for a Job, else the first Failure."""
    tmp = tempfile.mkdtemp(prefix="nnc-gen-")
    try:
        s = Setup(job, tmp)
        try:
            if "emit" in stages or "emit1" in stages:
                emit_stage(nnc, s, len(EMITS) if "emit" in stages else 1)
            if "check" in stages:
                check_stage(nnc, s)
            ref = interp_stage(nnc, s)
            for opt in (0, 2):
                if "O%d" % opt in stages:
                    exe_stage(nnc, s, ref, opt, "threads" in stages)
            if "run" in stages:
                run_stage(nnc, s, ref)
        except Failure as f:
            return f
        return None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def self_test():
    """The comparisons fail what they must (names of the checks that do not)."""
    tmp = tempfile.mkdtemp(prefix="nnc-gen-self-")
    try:
        a, b = os.path.join(tmp, "a.npz"), os.path.join(tmp, "b.npz")
        np.savez(a, W=np.array([1.0, 2.0]))
        np.savez(b, W=np.array([1.0, 2.0 + 2e-8]))
        out = "epoch 1  loss 0.500000  acc 50.00%  100 samples/s\ntrain: loss 0.400000 acc 50.00%\n"
        checks = [
            ("f64 weights 1e-8 apart", same_weights(a, b, "f64") is not None),
            ("f32 weights 1e-8 apart agree", same_weights(a, b, "f32") is None),
            ("a report the same but its speed", same_report(out, out.replace("100 samples", "7 samples"),
                                                             "f64", 4) is None),
            ("a loss one printed digit apart", same_report(out, out.replace("0.400000", "0.400001"),
                                                           "f64", 4) is None),
            ("a loss two printed digits apart", same_report(out, out.replace("0.400000", "0.400002"),
                                                            "f64", 4) is not None),
            ("an accuracy two samples apart", same_report(out, out.replace("acc 50.00", "acc 100.00"),
                                                          "f64", 4) is not None),
            ("an accuracy one sample apart", same_report(out, out.replace("acc 50.00", "acc 75.00"),
                                                         "f64", 4) is None),
            ("an epoch number apart", same_report(out, out.replace("epoch 1", "epoch 2"), "f32", 4)
             is not None),
            ("a line missing", same_report(out, out.split("\n", 1)[1], "f64", 4) is not None),
            ("a warning is not a run-time message", normalise_err(
                "p.nn:1:2: warning: w\n  w\n  ^\n") == normalise_err("")),
        ]
        return [what for what, ok in checks if not ok]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
