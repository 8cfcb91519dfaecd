#!/usr/bin/python3
"""nnc's training benchmark: `make bench` runs this.

Four workloads (Fashion-MNIST, relu, softmax cross-entropy, one epoch):
  a  784-128-10      batch 64   sgd lr 0.1   the 60 000 training images
  b  784-256-128-10  batch 128  sgd lr 0.1   the 60 000 training images
  c  784-128-10      batch 1    sgd lr 0.01  the first 10 000 training images (overhead-bound)
  d  the CNN of examples/fashion_cnn.nn with one dropout (bench/cnn_d.nn: conv 32 3x3 pad 1 relu, maxpool 2,
     conv 64 3x3 pad 1 relu, maxpool 2, flatten, dense 128 relu, dropout 0.25, dense 10),
     batch 64, adam lr 0.001, the 60 000 training images; peers: PyTorch only
     (bench/torch_cnn_peer.py: F.conv2d, F.max_pool2d, the same initialisation)
Each is trained by nnc's executable (bench/mlp_X.nn; on an AVX-512 host also compiled with
--cpu=x86-64-v3, beside OpenBLAS held to its AVX2 kernels) and by its peers: the C reference
trainer (bench/ref_trainer.c) on OpenBLAS sgemm with 2 threads and on plain loops (1
thread), and PyTorch (bench/torch_peer.py) with 1 and with 2 threads. The OpenBLAS and PyTorch
peers run twice: with the environment as it is, and with OPENBLAS_CORETYPE and
OPENBLAS_L2_SIZE removed from their own command's environment (those two hold OpenBLAS to
its AVX2 kernels on this machine).

Every peer times the epoch's loop only (shuffle, batches, forward, backward, update):
nnc's epoch line (its samples/s are over the same span as --log's `seconds`; --log itself
is not used because it adds a pass over every gradient per batch for the gradient norms),
and the `seconds` the peers print. Runs are interleaved, in a rotating order, for --reps
repetitions; the table shows medians. Every --torch-threads count is a row of its own,
measured in every repetition; the bar lines under the table compare nnc with each peer
family's fastest row.

FLOPs of an epoch, counted once analytically, for layer sizes n0..nL, N samples, batch B:
  N * (2*S + 2*S + 2*S')  +  ceil(N/B) * 2*P
where S = sum_l n(l-1)*n(l) (the forward product and the weight gradient each cost 2*S
a sample), S' = the same sum without the first layer (the input gradient, which the first
layer does not need), P = S + sum_l n(l) (the SGD update, w -= lr*g, 2 FLOPs a param a
batch). Bias, relu and softmax (O(sum n(l)) a sample, under 1%) are not counted.
"""
import argparse
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DATA = "/usr/share/datasets/fashion-mnist"
TRAIN = (f"{DATA}/train-images-idx3-ubyte.gz", f"{DATA}/train-labels-idx1-ubyte.gz")
TEST = (f"{DATA}/t10k-images-idx3-ubyte.gz", f"{DATA}/t10k-labels-idx1-ubyte.gz")
OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
PYTHON = "/usr/bin/python3"
TIMEOUT = 120  # seconds a run may take; --timeout

WORKLOADS = {
    "a": dict(sizes=[784, 128, 10], batch=64, lr=0.1, samples=60000),
    "b": dict(sizes=[784, 256, 128, 10], batch=128, lr=0.1, samples=60000),
    "c": dict(sizes=[784, 128, 10], batch=1, lr=0.01, samples=10000),
    "d": dict(model="cnn_d.nn", batch=64, lr=0.001, samples=60000,
              convs=[(32, 28 * 28, 1 * 9, False), (64, 14 * 14, 32 * 9, True)],
              sizes=[3136, 128, 10]),
}
CNN = "d"  # the workloads whose peers are nnc and PyTorch only


def conv_flops(w):
    """FLOPs a sample of the conv products of w: (F, H'*W', C*kh*kw, with input gradient)."""
    return sum(2 * f * p * kk * (3 if dx else 2) for f, p, kk, dx in w.get("convs", []))


def flops(w):
    """The FLOPs of one epoch of workload w (the formula of this file's docstring)."""
    pairs = [a * b for a, b in zip(w["sizes"], w["sizes"][1:])]
    s, s_inner = sum(pairs), sum(pairs[1:])
    params = s + sum(w["sizes"][1:])
    batches = -(-w["samples"] // w["batch"])
    if "convs" in w:  # every dense layer needs its input gradient; adam's update
        params += sum(f * kk + f for f, _, kk, _ in w["convs"])
        return w["samples"] * (6 * s + conv_flops(w)) + batches * 10 * params
    return w["samples"] * (4 * s + 2 * s_inner) + batches * 2 * params


# ---- running things ----

def run(cmd, env=None, cwd=None, timeout=None):
    """stdout of cmd; an error (with its stderr) when it fails or times out."""
    timeout = timeout or TIMEOUT
    try:
        p = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"timed out after {timeout:.0f} s: {' '.join(cmd)}")
    except OSError as e:
        raise RuntimeError(f"cannot run {cmd[0]}: {e.strerror}")
    if p.returncode != 0:
        raise RuntimeError(f"exit {p.returncode}: {' '.join(cmd)}\n{p.stderr.strip()}")
    return p.stdout


def unset_env():
    return {k: v for k, v in os.environ.items() if k not in OPENBLAS_VARS}


def find(pattern, text, what):
    m = re.search(pattern, text, re.M)
    if not m:
        raise RuntimeError(f"no {what} in output:\n{text}")
    return float(m.group(1))


# ---- preparing: the C trainer, the data subset, nnc's executables ----

def build_ref(out):
    """Builds ref_trainer with OpenBLAS; returns (path, has_blas)."""
    src, exe = os.path.join(HERE, "ref_trainer.c"), os.path.join(out, "ref_trainer")
    flags = ["-std=c11", "-D_POSIX_C_SOURCE=200809L", "-O3", "-march=native",
             "-mprefer-vector-width=512", "-fopenmp-simd", "-Wall", "-Wextra"]
    cc = os.environ.get("CC", "cc")
    try:
        run([cc, *flags, "-DREF_BLAS", "-o", exe, src, "-lopenblas", "-lz", "-lm"])
        return exe, True
    except RuntimeError as e:
        print(f"note: no OpenBLAS build ({e}); OpenBLAS rows skipped", file=sys.stderr)
        run([cc, *flags, "-o", exe, src, "-lz", "-lm"])
        return exe, False


def idx_subset(src, dst, count):
    """Writes the first count items of IDX file src (gzipped) to dst, uncompressed."""
    import gzip
    with gzip.open(src, "rb") as f:
        raw = f.read()
    ndims = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndims)]
    item = 1
    for d in dims[1:]:
        item *= d
    head = raw[:4] + count.to_bytes(4, "big") + raw[8:4 + 4 * ndims]
    with open(dst, "wb") as f:
        f.write(head + raw[4 + 4 * ndims:4 + 4 * ndims + count * item])


def prepare_data(out):
    """The train set of each workload, as (images, labels)."""
    os.makedirs(os.path.join(out, "data"), exist_ok=True)
    sub = tuple(os.path.join(out, "data", f"first10k-{k}-idx{n}-ubyte")
                for k, n in (("images", 3), ("labels", 1)))
    for src, dst in zip(TRAIN, sub):
        idx_subset(src, dst, WORKLOADS["c"]["samples"])
    return {"a": TRAIN, "b": TRAIN, "c": sub, "d": TRAIN}


def compile_seconds(nnc, model, exe, *flags):
    t0 = time.perf_counter()
    run([nnc, "-O2", *flags, model, "-o", exe])
    return time.perf_counter() - t0


def has_avx512():
    try:
        with open("/proc/cpuinfo") as f:
            return " avx512f" in f.read()
    except OSError:
        return False


def build_models(nnc, out, workloads):
    """nnc's executables: for the host, and on an AVX-512 host also for x86-64-v3 (AVX2)."""
    for k in workloads:
        model = os.path.join(HERE, WORKLOADS[k].get("model", f"mlp_{k}.nn"))
        compile_seconds(nnc, model, os.path.join(out, f"mlp_{k}"))
        if has_avx512():
            compile_seconds(nnc, model, os.path.join(out, f"mlp_{k}_v3"), "--cpu=x86-64-v3")


# ---- compile time: nnc on models of growing size ----

def stack_model(n):
    """n dense layers of 64 on x[64]: one product shape, n times."""
    layers = "".join(f"    h{i} = dense(h{i - 1}, 64, relu)\n" for i in range(1, n + 1))
    return (f"model stack{n} {{\n    input x[64]\n    target t[64]\n    h0 = x * 1\n{layers}"
            f"    loss = mse(h{n}, t)\n}}\n")


def chain_model(n):
    """n elementwise statements h{i} = h{i-1} * 0.5 + x on x[2]."""
    body = "".join(f"    h{i} = h{i - 1} * 0.5 + x\n" for i in range(1, n + 1))
    return (f"model chain{n} {{\n    input x[2]\n    target t[2]\n    param w[2] = ones\n"
            f"    h0 = w * x\n{body}    loss = mse(h{n}, t)\n}}\n")


def timed(cmd):
    """(wall seconds, peak memory in MB) of one run of cmd."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    seconds = time.perf_counter() - t0
    if status != 0:
        raise RuntimeError(f"exit {status}: {' '.join(cmd)}\n{p.stderr.read().decode()[:300]}")
    return seconds, usage.ru_maxrss / 1024


def compile_table(nnc, out, reps):
    """nnc -O2 to an executable: seconds (median of reps) and peak memory, per model."""
    models = [(f"examples/{m}.nn", os.path.join(ROOT, "examples", f"{m}.nn"))
              for m in ("fashion_mlp", "fashion_cnn")]
    os.makedirs(os.path.join(out, "compile"), exist_ok=True)
    for name, make, sizes in (("stack", stack_model, (10, 20, 40, 80)),
                              ("chain", chain_model, (125, 250, 500, 1000))):
        for n in sizes:
            path = os.path.join(out, "compile", f"{name}{n}.nn")
            with open(path, "w") as f:
                f.write(make(n))
            what = f"{n}-layer stack" if name == "stack" else f"{n}-statement chain"
            models.append((what, path))
    rows = ["| model | -O2 compile s (median) | peak MB (nnc or its linker; ~100 at least: a process"
            " this harness starts counts its size) | s for `--cpu=znver3` |",
            "|---|---:|---:|---:|"]
    exe = os.path.join(out, "compile", "exe")
    for what, path in models:
        try:
            # znver3, a Zen 3 host's native CPU, for the same work on any host: LLVM tunes
            # by the CPU's scheduling model (its unrolling once tripled the module there)
            runs = [(timed([nnc, "-O2", path, "-o", exe]), timed([nnc, "-O2", "--cpu=znver3", path, "-o", exe]))
                    for _ in range(reps)]
            rows.append(f"| {what} | {statistics.median(h[0] for h, _ in runs):.2f} | "
                        f"{max(h[1] for h, _ in runs):.0f} | {statistics.median(z[0] for _, z in runs):.2f} |")
        except RuntimeError as e:
            rows.append(f"| {what} | failed: {failure_text(e)} | | |")
    return rows


# ---- the peers: each returns (seconds of the epoch's loop, test accuracy %) ----

def pair(files):
    return ",".join(files)


def run_nnc(ctx, k, seed, env, suffix=""):
    w = WORKLOADS[k]
    out = run([os.path.join(ctx.out, f"mlp_{k}{suffix}"), "--data", pair(ctx.data[k]),
               "--test", pair(TEST), "--epochs", "1", "--seed", str(seed),
               "--save", os.path.join(ctx.out, "weights.npz"), *ctx.nnc_args],
              env=env, cwd=ctx.out)
    rate = find(r"^epoch 1 .* ([0-9.]+) samples/s", out, "nnc epoch line")
    return w["samples"] / rate, find(r"^test: .*acc ([0-9.]+)%", out, "nnc test line")


def run_nnc_v3(ctx, k, seed, env):
    return run_nnc(ctx, k, seed, env, "_v3")


def ref_args(ctx, k, seed):
    w = WORKLOADS[k]
    return ["--train", pair(ctx.data[k]), "--test", pair(TEST),
            "--layers", ",".join(map(str, w["sizes"])), "--batch", str(w["batch"]),
            "--lr", str(w["lr"]), "--epochs", "1", "--seed", str(seed)]


def parse_peer(out, prefix=""):
    return (find(rf"^{prefix}epoch 1 .*seconds ([0-9.]+)", out, "epoch line"),
            find(rf"^{prefix}test: .*acc ([0-9.]+)%", out, "test line"))


def run_blas(ctx, k, seed, env):
    return parse_peer(run([ctx.ref, *ref_args(ctx, k, seed), "--backend", "blas",
                           "--threads", "2"], env=env))


def run_loops(ctx, k, seed, env):
    return parse_peer(run([ctx.ref, *ref_args(ctx, k, seed), "--backend", "loops"], env=env))


def run_torch(ctx, k, seed, env, threads):
    if k in CNN:
        w = WORKLOADS[k]
        args = ["torch_cnn_peer.py", "--train", pair(ctx.data[k]), "--test", pair(TEST),
                "--batch", str(w["batch"]), "--lr", str(w["lr"]), "--epochs", "1",
                "--seed", str(seed)]
    else:
        args = ["torch_peer.py", *ref_args(ctx, k, seed)]
    out = run([PYTHON, os.path.join(HERE, args[0]), *args[1:], "--threads", str(threads)],
              env=env, cwd=HERE)
    return parse_peer(out, prefix=rf"threads {threads}\s+")


def failure_text(e):
    """'exit 1' or 'timed out after N s', then the first line of stderr, for a table cell."""
    lines = str(e).splitlines()
    text = lines[0].split(":")[0] + (f" ({lines[1]})" if len(lines) > 1 else "")
    return text if len(text) <= 160 else text[:157] + "..."


class Peer:
    """One row kind of the table: a name, how to run it, in which environment, and for
    PyTorch the thread count."""

    def __init__(self, name, fn, env, threads=None):
        self.name, self.fn, self.env, self.threads = name, fn, env, threads
        self.results = {}  # workload -> list of (seconds, accuracy)
        self.failures = {}  # workload -> the last failure's first line

    def measure(self, ctx, k, seed):
        """One run of workload k; a failure is reported, leaves the others going and stops
        this peer's later runs of k (a hang would cost a timeout each time)."""
        if k in self.failures or (k in CNN and not self.name.startswith(("nnc", "PyTorch"))):
            return
        try:
            if self.threads is None:
                r = self.fn(ctx, k, seed, self.env)
            else:
                r = self.fn(ctx, k, seed, self.env, self.threads)
        except RuntimeError as e:
            self.failures[k] = failure_text(e)
            print(f"  ({k}) {self.name} failed: {e}", file=sys.stderr, flush=True)
            return
        self.results.setdefault(k, []).append(r)
        if ctx.verbose:
            print(f"  ({k}) {self.name}: {r[0]:.3f} s, test acc {r[1]:.2f}%",
                  file=sys.stderr, flush=True)

    def median(self, k):
        return statistics.median(s for s, _ in self.results[k]) if self.results.get(k) else None


def make_peers(args, has_blas, has_torch):
    asis, unset = dict(os.environ), unset_env()
    peers = [Peer("nnc", run_nnc, asis)]
    if has_avx512():
        peers.append(Peer("nnc --cpu=x86-64-v3", run_nnc_v3, asis))
    if has_blas:
        peers += [Peer("C + OpenBLAS, 2 thr", run_blas, asis),
                  Peer("C + OpenBLAS, 2 thr, OPENBLAS_* unset", run_blas, unset)]
        if has_avx512():  # OpenBLAS held to its AVX2 kernels: the yardstick of the v3 row
            peers.append(Peer("C + OpenBLAS, 2 thr, OPENBLAS_CORETYPE=Haswell", run_blas,
                              dict(unset, OPENBLAS_CORETYPE="Haswell")))
    peers.append(Peer("C plain loops, 1 thr", run_loops, asis))
    if has_torch:
        for t in [int(x) for x in args.torch_threads.split(",")]:
            peers += [Peer(f"PyTorch, {t} thr", run_torch, asis, t),
                      Peer(f"PyTorch, {t} thr, OPENBLAS_* unset", run_torch, unset, t)]
    return [p for p in peers if not args.peers or any(s in p.name for s in args.peers)]


def torch_available():
    try:
        run([PYTHON, "-c", "import torch"])
        return True
    except (RuntimeError, OSError):
        print("note: PyTorch is missing (Debian: python3-torch); its rows skipped",
              file=sys.stderr)
        return False


# ---- the report ----

def machine():
    model, cores, flags = platform.processor() or "?", os.cpu_count(), ""
    try:
        out = run(["lscpu"])
        model = find_text(r"^Model name:\s*(.+)$", out) or model
        family, number = find_text(r"^CPU family:\s*(.+)$", out), find_text(r"^Model:\s*(.+)$", out)
        model += f" (family {family}, model {number})"
        flags = find_text(r"^Flags:\s*(.+)$", out)
    except (RuntimeError, OSError):
        pass
    wide = [f for f in ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512dq",
                        "avx512vl", "avx512_vnni", "avx512_bf16") if f in flags.split()]
    return f"{model}, {cores} cores, flags: {' '.join(wide) or '?'}"


def find_text(pattern, text):
    m = re.search(pattern, text, re.M)
    return m.group(1).strip() if m else ""


def table(peers, workloads):
    rows = ["| peer | workload | s/epoch (median) | min | samples/s | GFLOP/s | test acc % "
            "| peer s / nnc s |",
            "|---|---|---:|---:|---:|---:|---:|---:|"]
    for k in workloads:
        nnc = next((p for p in peers if p.name == "nnc" and k in p.results), None)
        base = statistics.median(s for s, _ in nnc.results[k]) if nnc else None
        for p in peers:
            if k in p.failures and k not in p.results:
                rows.append(f"| {p.name} | ({k}) | failed: {p.failures[k]} ||||||")
            if k not in p.results:
                continue
            secs = [s for s, _ in p.results[k]]
            med, acc = statistics.median(secs), statistics.median(a for _, a in p.results[k])
            w = WORKLOADS[k]
            ratio = f"{med / base:.2f}" if base else "-"
            rows.append(f"| {p.name} | ({k}) | {med:.3f} | {min(secs):.3f} | "
                        f"{w['samples'] / med:,.0f} | {flops(w) / med / 1e9:.1f} | {acc:.2f} | "
                        f"{ratio} |")
    return "\n".join(rows)


# Issue 6's bar: (a), (b): at least as fast as C + OpenBLAS and 2x PyTorch; (c): 10x
# PyTorch and as fast as the plain-loop C. Each peer family is taken at its fastest row
# (environment, thread count) by median.
BAR = {"a": [("C + OpenBLAS", 1), ("PyTorch", 2)], "b": [("C + OpenBLAS", 1), ("PyTorch", 2)],
       "c": [("PyTorch", 10), ("C plain loops", 1)], "d": [("PyTorch", 3)]}


def bar_report(peers, workloads):
    """One line a workload: nnc's speed-up over each peer family's fastest row, and
    whether that meets the bar."""
    nnc = next((p for p in peers if p.name == "nnc"), None)
    lines = []
    for k in workloads:
        base = nnc.median(k) if nnc else None
        parts = []
        for family, need in BAR[k]:
            rows = [(p.median(k), p.name) for p in peers
                    if p.name.startswith(family) and p.median(k) is not None]
            if not rows or base is None:
                continue
            best, name = min(rows)
            x = best / base
            parts.append(f"{x:.2f}x the fastest {family} ({name}; bar {need}x: "
                         f"{'met' if x >= need else 'MISSED'})")
        if parts:
            lines.append(f"bar ({k}): nnc is " + "; ".join(parts))
        v3 = next((p for p in peers if p.name == "nnc --cpu=x86-64-v3"), None)
        hw = next((p for p in peers if p.name.endswith("OPENBLAS_CORETYPE=Haswell")), None)
        if k in "ab" and v3 and hw and v3.median(k) and hw.median(k):
            x = v3.median(k) / hw.median(k)
            lines.append(f"bar ({k}), AVX2 on this AVX-512 host: nnc --cpu=x86-64-v3 takes {x:.2f}x "
                         f"the time of OpenBLAS held to its AVX2 kernels (bar 1.1x: "
                         f"{'met' if x <= 1.1 else 'MISSED'})")
    return lines


def describe(workloads):
    lines = ["FLOPs/epoch = N*(4*S + 2*S') + ceil(N/B)*2*P  (S = sum of in*out over the layers, "
             "S' = the same without the first layer, P = the params; bias, relu, softmax not "
             "counted)"]
    for k in workloads:
        w = WORKLOADS[k]
        if k in CNN:
            lines.append(f"({k}) bench/{w['model']} (the CNN of examples/fashion_cnn.nn), batch {w['batch']}, "
                         f"adam lr {w['lr']}, {w['samples']} samples: {flops(w) / 1e9:.2f} "
                         f"GFLOP/epoch, of which the conv products "
                         f"{w['samples'] * conv_flops(w) / 1e9:.2f}")
            continue
        lines.append(f"({k}) {'-'.join(map(str, w['sizes']))}, batch {w['batch']}, "
                     f"lr {w['lr']}, {w['samples']} samples: {flops(w) / 1e9:.2f} GFLOP/epoch")
    return lines


def versions():
    """The peers' software: Debian package versions and the C compiler."""
    parts = []
    for pkg in ("python3-torch", "libopenblas0-pthread"):
        try:
            parts.append(f"{pkg} {run(['dpkg-query', '-W', '-f=${Version}', pkg]).strip()}")
        except (RuntimeError, OSError):
            parts.append(f"{pkg} (not installed)")
    try:
        cc = run([os.environ.get("CC", "cc"), "--version"]).splitlines()[0]
        parts.append(cc)
    except (RuntimeError, OSError):
        pass
    return ", ".join(parts)


def git_commit():
    """The commit measured, and whether the compiler or runtime differ from it."""
    try:
        head = run(["git", "-C", ROOT, "log", "-1", "--format=%h %s"]).strip()
        dirty = run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no", "--",
                     "compiler", "runtime", "CMakeLists.txt"]).strip()
    except (RuntimeError, OSError):
        return "?"
    return head + (" (plus uncommitted changes to the compiler/runtime)" if dirty else "")


# ---- the predict row: ./fashion_mlp --predict against torch.no_grad() (spec 11) ----

def predict_rows(a):
    """samples/s of `./fashion_mlp --predict` over the 10 000 test images (the whole command:
    reading the gzipped IDX file, the forward pass, the csv to /dev/null; median of --reps
    runs); of the same generated forward pass alone, through the model's shared library
    (bench/lib_predict.py); and of PyTorch's no_grad() forward over the same images in
    memory with the same weights (bench/torch_predict.py). The ratios compare the forward
    passes alone, and the whole command with the same work done in Python by PyTorch
    (reading, forward, csv; Python's start and `import torch` left out)."""
    out = os.path.join(a.out, "predict")
    os.makedirs(out, exist_ok=True)
    exe, npz, images = os.path.join(out, "fashion_mlp"), os.path.join(out, "w.npz"), TEST[0]
    rows = ["| --predict, Fashion-MNIST MLP, 10 000 test images | samples/s | vs nnc |",
            "|---|---:|---:|"]
    try:
        run([a.nnc, os.path.join(ROOT, "examples", "fashion_mlp.nn"), "-o", exe])
        run([exe, "--epochs", "0", "--save", npz], cwd=out)
        secs = statistics.median(timed([exe, "--predict", images, "--load", npz, "--out", os.devnull])[0]
                                 for _ in range(a.reps))
    except RuntimeError as e:
        return rows + [f"| nnc --predict | failed: {failure_text(e)} | |"]
    whole_rate = 10000 / secs
    rows.append(f"| nnc `--predict` (whole command: read, forward, write csv) | {whole_rate:.0f} | |")
    try:
        lib = os.path.join(out, "libfashion_mlp.so")
        run([a.nnc, "--emit=shared", os.path.join(ROOT, "examples", "fashion_mlp.nn"), "-o", lib])
        text = run([PYTHON, os.path.join(HERE, "lib_predict.py"), "--lib", lib, "--images", images,
                    "--weights", npz, "--reps", str(a.reps)])
        s, n = re.search(r"seconds ([0-9.]+)  samples (\d+)", text).groups()
    except (RuntimeError, AttributeError) as e:
        return rows + [f"| nnc forward only | failed: {failure_text(e)} | |"]
    nnc_rate = int(n) / float(s)
    rows.append(f"| nnc forward only (fashion_mlp_predict of --emit=shared) | {nnc_rate:.0f} | 1.00 |")
    if not torch_available():
        return rows
    try:
        text = run([PYTHON, os.path.join(HERE, "torch_predict.py"), "--images", images, "--weights", npz,
                    "--threads", a.torch_threads, "--reps", str(a.reps)])
    except RuntimeError as e:
        return rows + [f"| PyTorch no_grad() forward | failed: {failure_text(e)} | |"]
    for t, s, n in re.findall(r"^threads (\d+)  seconds ([0-9.]+)  samples (\d+)", text, re.M):
        rate = int(n) / float(s)
        rows.append(f"| PyTorch no_grad() forward only, {t} thr | {rate:.0f} | {nnc_rate / rate:.2f} |")
    for t, s, n in re.findall(r"^whole threads (\d+)  seconds ([0-9.]+)  samples (\d+)", text, re.M):
        rate = int(n) / float(s)
        rows.append(f"| PyTorch read, forward, write csv (in Python, after `import torch`), {t} thr | "
                    f"{rate:.0f} | {whole_rate / rate:.2f} (whole vs whole) |")
    return rows


# ---- main ----

class Context:
    def __init__(self, out, ref, data, args):
        self.out, self.ref, self.data = out, ref, data
        self.verbose, self.nnc_args = args.verbose, args.nnc_args.split()


def parse_args():
    ap = argparse.ArgumentParser(description="nnc's training benchmark (see bench/run.py)")
    ap.add_argument("--nnc", default=os.path.join(ROOT, "build", "nnc"))
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "bench"),
                    help="work folder: executables, data subset")
    ap.add_argument("--workloads", default="abcd", help="a subset of abcd, e.g. --workloads a")
    ap.add_argument("--reps", type=int, default=5, help="repetitions (medians are shown)")
    ap.add_argument("--quick", action="store_true", help="one repetition, same as --reps 1")
    ap.add_argument("--torch-threads", default="1,2", help="PyTorch thread counts (a row each)")
    ap.add_argument("--nnc-commit", help="what to call the nnc measured (default: this "
                    "tree's git commit)")
    ap.add_argument("--nnc-args", default="", help="more flags for nnc's executables")
    ap.add_argument("--timeout", type=float, default=TIMEOUT, help="seconds a run may take")
    ap.add_argument("--results", help="also write the report into this Markdown file "
                    "(between its bench/run.py marker lines; the rest is kept)")
    ap.add_argument("-v", "--verbose", action="store_true", help="each run's time on stderr")
    ap.add_argument("--peers", nargs="*", help="only the peers whose name contains one of these")
    a = ap.parse_args()
    a.reps = 1 if a.quick else max(1, a.reps)
    a.workloads = [k for k in "abcd" if k in a.workloads]
    return a


def measure_all(ctx, peers, workloads, reps):
    for rep in range(reps):
        for k in workloads:
            order = peers[rep % len(peers):] + peers[:rep % len(peers)]
            for p in order:
                p.measure(ctx, k, rep + 1)
        print(f"repetition {rep + 1}/{reps} done", file=sys.stderr, flush=True)


def report(a, peers, compile_rows, load0, seconds):
    """The run's report, as lines of Markdown (a table among plain lines)."""
    env = ", ".join(f"{v}={os.environ.get(v, '(unset)')}" for v in OPENBLAS_VARS)
    load = f"{load0:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
    return [f"date: {time.strftime('%Y-%m-%d %H:%M %Z')}",
            f"command: {PYTHON} bench/run.py {shlex.join(sys.argv[1:])}",
            f"machine: {machine()}; load average {load}",
            f"nnc: {a.nnc_commit or git_commit()}",
            f"peers: {versions()}",
            f"environment: {env}",
            f"repetitions: {a.reps} (medians); seconds = the epoch's training loop only",
            *describe(a.workloads), "",
            table(peers, a.workloads), "",
            "(peer s / nnc s above 1: nnc is faster by that factor; min: the fastest repetition)",
            "", *bar_report(peers, a.workloads), "",
            "compile time (nnc -O2 to an executable, median of 3; bars: fashion_mlp 0.5 s, fashion_cnn 1 s, "
            "40-layer stack 2 s, 1000-statement chain 5 s and 500 MB):", "",
            *compile_rows, "",
            f"benchmark wall time: {seconds:.0f} s"]


BEGIN, END = "<!-- bench/run.py --results: begin -->", "<!-- bench/run.py --results: end -->"


def write_results(path, lines):
    """Puts the report between the BEGIN and END lines of path (appended when absent),
    keeping the rest of the file, the notes written by hand."""
    text = open(path).read() if os.path.exists(path) else ""
    block = "\n".join([BEGIN, *(f"{x}  " if x and not x.startswith("|") else x for x in lines),
                       END])
    if BEGIN in text and END in text:
        text = text[:text.index(BEGIN)] + block + text[text.index(END) + len(END):]
    else:
        text = text + ("\n" if text else "") + block + "\n"
    with open(path, "w") as f:
        f.write(text)


def main():
    global TIMEOUT
    a = parse_args()
    TIMEOUT = a.timeout
    t0, load0 = time.perf_counter(), os.getloadavg()[0]
    a.out = os.path.abspath(a.out)
    os.makedirs(a.out, exist_ok=True)
    ref, has_blas = build_ref(a.out)
    ctx = Context(a.out, ref, prepare_data(a.out), a)
    build_models(a.nnc, a.out, a.workloads)
    compile_rows = compile_table(a.nnc, a.out, 1 if a.quick else 3)
    peers = make_peers(a, has_blas, torch_available())
    measure_all(ctx, peers, a.workloads, a.reps)
    lines = report(a, peers, compile_rows, load0, time.perf_counter() - t0)
    lines += ["", "prediction (vs nnc: nnc's samples/s over the peer's):", "", *predict_rows(a)]
    print(*lines, sep="\n")
    if a.results:
        write_results(a.results, lines)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RuntimeError as e:
        print(f"bench: {e}", file=sys.stderr)
        sys.exit(1)
