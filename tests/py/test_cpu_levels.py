#!/usr/bin/python3
"""--cpu and --cpu-features (spec section 6), and the differential test at every x86-64
level the host can run, so an AVX-512 host also tests the AVX2 and SSE code paths.

1. Each level the host's CPU has (x86-64, x86-64-v3, and x86-64-v4 with AVX-512; v2 has
   SSE's width as x86-64 and is not repeated): every model of tests/codegen trains to the interpreter's weights (f64, rtol
   1e-9), and the module uses the level's widest registers and none wider (xmm, ymm, zmm).
2. An executable (and nnc --run) compiled for a feature this CPU lacks exits 1 naming it,
   before any of its code runs: avx512er (Xeon Phi only) everywhere, and x86-64-v4 on a
   host without AVX-512.
3. An unknown CPU or feature is an error naming it.
4. The products' row panels are sized to the target's L2 (haswell 256 KB, znver3 512 KB,
   same features and registers): a batch of 300 x 784 f32 spans 8 and 4 panels, and both
   train to the same bits, which agree with the interpreter.
5. The optimised module is about as large for znver3 as for x86-64-v3 (same features): LLVM's
   unrolling by the CPU's scheduling model is off (cg_target.c); with it, fashion_cnn's
   module was 3 times as large for znver3, and its compile 4 times as long.
"""
import concurrent.futures
import glob
import os
import re
import sys

import numpy as np

from nnctest import fail, main, run, sanitized

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LEVELS = [  # name, /proc/cpuinfo flags it needs, the widest register it may use
    ("x86-64", [], "xmm"),
    ("x86-64-v2", ["sse4_2", "popcnt", "ssse3", "cx16"], None),  # SSE's width too: not retested
    ("x86-64-v3", ["avx2", "fma", "bmi1", "bmi2", "movbe", "f16c"], "ymm"),
    ("x86-64-v4", ["avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"], "zmm"),
]
WIDER = {"xmm": ("ymm", "zmm"), "ymm": ("zmm",), "zmm": ()}


BUILD = [None]


def host_flags():
    with open("/proc/cpuinfo") as f:
        m = re.search(r"^flags\s*:(.*)$", f.read(), re.M)
    return set(m.group(1).split()) if m else set()


def runnable_levels():
    flags, out = host_flags(), []
    for name, need, reg in LEVELS:
        if not all(f in flags for f in need):
            break
        if reg:
            out.append((name, reg))
    return out


def check_level(nnc, tmp, path, level, reg, want):
    name = os.path.basename(path)[:-3]
    exe = os.path.join(tmp, f"{name}_{level}")
    run([nnc, "--cpu=" + level, "--precision=f64", path, "-o", exe], tmp)
    run([exe, "--epochs", "3", "--save", exe + ".npz", "--quiet"], tmp)
    got = np.load(exe + ".npz")
    for k in want.files:
        if not np.allclose(got[k], want[k], rtol=1e-9, atol=1e-12):
            fail(f"{name} --cpu={level}: {k} differs from the interpreter by "
                 f"{np.max(np.abs(got[k] - want[k])):g}")
    if name in ("matmul", "long_chain"):  # products and fused chains: the kernels' registers
        asm = run([nnc, "--cpu=" + level, "--emit=asm", path], tmp).stdout
        wider = [w for w in WIDER[reg] if "%" + w in asm]
        if wider or (reg != "xmm" and "%" + reg not in asm):
            fail(f"{name} --cpu={level}: registers {wider or 'none of ' + reg} in the assembly")


def test_levels(nnc, tmp):
    models = sorted(glob.glob(os.path.join(ROOT, "tests", "codegen", "*.nn")))
    levels = runnable_levels()
    if len(levels) < 2:
        fail(f"this host runs only {levels}: x86-64-v3 at least is expected here")
    if sanitized(BUILD[0]):  # several times slower there: the models of products and chains
        models = [m for m in models if os.path.basename(m) in ("matmul.nn", "long_chain.nn", "fused.nn")]
    refs = {}
    for path in models:
        ref = os.path.join(tmp, os.path.basename(path) + "_ref.npz")
        run([nnc, "--interp", "--precision=f64", path, "--", "--epochs", "3", "--save", ref, "--quiet"], tmp)
        refs[path] = np.load(ref)
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        jobs = [pool.submit(check_level, nnc, tmp, path, level, reg, refs[path])
                for path in models for level, reg in levels]
        for j in jobs:
            j.result()  # a failure exits the whole script


PANEL_MODEL = """model pan {
    input x[784]
    target t[10]
    h = dense(x, 96, relu)
    y = dense(h, 10, softmax)
    loss = cross_entropy(y, t)
}
train pan {
    data = csv("pan.csv")
    epochs = 1
    batch = 300
    optimizer = sgd(lr = 0.1, momentum = 0.9)
}
"""


def test_panels(nnc, tmp):
    if "avx2" not in host_flags() or "fma" not in host_flags():
        return  # haswell and znver3 need AVX2 and FMA
    if sanitized(BUILD[0]):
        return  # blocking arithmetic, no C path of its own: the normal build's
    rng = np.random.default_rng(3)
    x = rng.random((650, 784))
    np.savetxt(os.path.join(tmp, "pan.csv"), np.hstack([x, np.eye(10)[rng.integers(0, 10, 650)]]),
               delimiter=",", fmt="%.5f")
    with open(os.path.join(tmp, "pan.nn"), "w") as f:
        f.write(PANEL_MODEL)
    saved = {}
    for cpu in ("haswell", "znver3"):
        run([nnc, "--cpu=" + cpu, "pan.nn", "-o", "pan_" + cpu], tmp)
        run(["./pan_" + cpu, "--quiet", "--save", cpu + ".npz"], tmp)
        with open(os.path.join(tmp, cpu + ".npz"), "rb") as f:
            saved[cpu] = f.read()
    if saved["haswell"] != saved["znver3"]:
        fail("pan.nn: the weights depend on the L2 panel size (haswell vs znver3)")
    run([nnc, "--interp", "pan.nn", "--", "--quiet", "--save", "ref.npz"], tmp)
    got, want = np.load(os.path.join(tmp, "haswell.npz")), np.load(os.path.join(tmp, "ref.npz"))
    for k in want.files:  # f32 sums of 784 terms vs f64: a few ulps of f32
        if not np.allclose(got[k], want[k], rtol=1e-4, atol=1e-5):
            fail(f"pan.nn: {k} differs from the interpreter by {np.max(np.abs(got[k] - want[k])):g}")


def test_tuning_size(nnc, tmp):
    cnn = os.path.join(ROOT, "examples", "fashion_cnn.nn")
    lines = {}
    for cpu in ("x86-64-v3", "znver3"):
        run([nnc, "--cpu=" + cpu, "--emit=llvm", cnn, "-o", cpu + ".ll"], tmp)
        with open(os.path.join(tmp, cpu + ".ll")) as f:
            lines[cpu] = sum(1 for _ in f)
    if lines["znver3"] > 1.3 * lines["x86-64-v3"]:
        fail(f"fashion_cnn's optimised module: {lines['znver3']} lines for znver3, "
             f"{lines['x86-64-v3']} for x86-64-v3 (LLVM unrolls by the CPU's model again?)")


def test_missing_feature(nnc, tmp):
    xor = os.path.join(ROOT, "examples", "xor.nn")
    cases = [("--cpu-features=+avx512er", "avx512er")]
    if "avx512f" not in host_flags():
        cases.append(("--cpu=x86-64-v4", "avx512f, avx512bw, avx512cd, avx512dq, avx512vl"))
    for flag, names in cases:
        run([nnc, flag, xor, "-o", "lacking"], tmp)
        want = f"this program needs {names}; this CPU lacks"
        for cmd in (["./lacking"], [nnc, "--run", flag, xor]):
            p = run(cmd, tmp, code=1)
            if want not in p.stderr or "train:" in p.stdout:
                fail(f"{' '.join(cmd)}: expected '{want}' and no training:\n{p.stdout}{p.stderr}")


def test_bad_names(nnc, tmp):
    xor = os.path.join(ROOT, "examples", "xor.nn")
    for flag, want in (("--cpu=pentium9", "unknown CPU 'pentium9'"),
                       ("--cpu-features=+warp", "unknown feature 'warp'"),
                       ("--cpu-features=avx2", "'avx2' is not +FEATURE or -FEATURE")):
        p = run([nnc, flag, xor, "-o", "x"], tmp, code=1)
        if want not in p.stderr:
            fail(f"{flag}: expected '{want}' in: {p.stderr}")
        if os.path.exists(os.path.join(tmp, "x")):
            fail(f"{flag}: an output was written")


if __name__ == "__main__":
    if "--build" in sys.argv:
        BUILD[0] = sys.argv[sys.argv.index("--build") + 1]
    main("nnc-cpu-", [test_bad_names, test_missing_feature, test_tuning_size, test_panels, test_levels])
