#!/usr/bin/python3
"""Many params: the compiler's memory grows linearly, and memory running out is a message
(issue 11, finding 10).

1. A chain of 10 000 params (h_i = h_(i-1) + p_i * x, so one gradient passes along the
   whole chain and collects 10 000 names) through --emit=grad: lowering, differentiation
   and simplification peak under 300 MB (quadratic growth took 3.6 GB); 20 000 params
   go through --emit=ir. 20 000 models: a duplicate found, the choice asked for with a
   short list of names, all well under 300 MB.
2. Under an address-space limit (ulimit -v), from the smallest at which --emit=ir works up
   to one where LLVM's code generation fits too, every run of --emit=llvm either succeeds
   or ends with `nnc: error: out of memory` and exit status 1: never a std::bad_alloc
   abort (SIGABRT) or a crash. At least one run must have run out of memory.
3. A chain of 1000 elementwise statements compiles at -O2 (deep recursion in LLVM) and trains.
"""
import os
import resource
import subprocess

from nnctest import fail, main


def chain(n):
    lines = ["model chain {", "    input x[2]", "    target t"]
    lines += [f"    param p{i}[2] = const(0.001)" for i in range(n)]
    lines += ["    h0 = p0 * x"] + [f"    h{i} = h{i - 1} + p{i} * x" for i in range(1, n)]
    lines += [f"    loss = mse(sum(h{n - 1}), t)", "}",
              "train chain { data = [[1, 2] -> 3] epochs = 1 batch = 1 }"]
    return "\n".join(lines) + "\n"


def write_chain(tmp, n):
    path = os.path.join(tmp, f"chain{n}.nn")
    with open(path, "w") as f:
        f.write(chain(n))
    return path


def sanitized(nnc):
    """AddressSanitizer reserves terabytes of address space: no limit can apply, and its
    shadow memory and quarantine say nothing about the compiler's own use."""
    with open(nnc, "rb") as f:
        return b"__asan_init" in f.read()


def capped(nnc, limit_mb):
    """preexec_fn: an address-space limit (none under the sanitizers), so that a runaway
    nnc fails instead of the host."""
    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (limit_mb << 20, limit_mb << 20))
    return None if sanitized(nnc) else cap


def limited(nnc, args, cwd, limit_mb):
    """(exit status, stderr, peak RSS in MB) of nnc under an address-space limit."""
    p = subprocess.Popen([nnc] + args, cwd=cwd, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, preexec_fn=capped(nnc, limit_mb))
    try:
        err = p.stderr.read().decode(errors="replace")
        _, status, usage = os.wait4(p.pid, 0)
    except BaseException:
        p.kill()
        raise
    p.returncode = os.waitstatus_to_exitcode(status)
    return p.returncode, err, usage.ru_maxrss / 1024


def test_linear_memory(nnc, tmp):
    path = write_chain(tmp, 10000)
    code, err, peak = limited(nnc, ["--emit=grad", path], tmp, 2048)
    if code != 0 or (peak > 300 and not sanitized(nnc)):
        fail(f"--emit=grad of 10000 params: exit {code}, peak {peak:.0f} MB (at most 300)\n{err}")
    print(f"10000 params, --emit=grad: peak {peak:.0f} MB")
    path = write_chain(tmp, 20000)
    code, err, peak = limited(nnc, ["--emit=ir", path], tmp, 2048)
    if code != 0:
        fail(f"--emit=ir of 20000 params: exit {code}\n{err}")
    print(f"20000 params, --emit=ir: peak {peak:.0f} MB")


def test_many_models(nnc, tmp):
    """20 000 models: duplicate names found through a table, and the message that asks
    for --model lists a few names, not a list rebuilt per model (quadratic: 6 GB)."""
    path = os.path.join(tmp, "many.nn")
    with open(path, "w") as f:
        for i in range(20000):
            f.write(f"model m{i} {{ input x[2] param p[2] loss = sum(p * x) output x }}\n")
        f.write("model m7 { input x[2] param p[2] loss = sum(p * x) output x }\n")
    code, err, peak = limited(nnc, ["--emit=ir", path], tmp, 2048)
    if code != 1 or "model 'm7' is already defined on line 8" not in err:
        fail(f"a second model m7: exit {code}\n{err[-2000:]}")
    with open(path, "r+") as f:
        f.truncate(f.read().rindex("model m7 {"))
    code, err, peak = limited(nnc, ["--emit=ir", path], tmp, 2048)
    want = "several models ('m0', 'm1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7' and 19992 more)"
    if code != 1 or want not in err or (peak > 300 and not sanitized(nnc)):
        fail(f"20000 models without --model: exit {code}, peak {peak:.0f} MB\n{err[-2000:]}")
    code, err, peak = limited(nnc, ["--emit=ir", "--model=m19999", path], tmp, 2048)
    if code != 0:
        fail(f"--model=m19999 of 20000 models: exit {code}\n{err[-2000:]}")


def smallest_limit(nnc, args, tmp):
    lo, hi = 32, 2048  # MB: lo fails (the shared libraries alone need more), hi works
    if limited(nnc, args, tmp, hi)[0] != 0:
        fail(f"nnc {' '.join(args)} fails even under {hi} MB")
    while hi - lo > 4:
        mid = (lo + hi) // 2
        if limited(nnc, args, tmp, mid)[0] == 0:
            hi = mid
        else:
            lo = mid
    return hi


def test_out_of_memory(nnc, tmp):
    if sanitized(nnc):
        print("skipped: out of memory under the sanitizers")
        return
    path = write_chain(tmp, 500)
    limit = smallest_limit(nnc, ["--emit=ir", path], tmp)
    ran_out, fits = 0, 0
    while fits < 2 and limit < 4096:
        code, err, _ = limited(nnc, ["-O0", "--emit=llvm", path, "-o", "chain.ll"], tmp, limit)
        last = err.strip().splitlines()[-1] if err.strip() else ""
        if code != 0 and (code != 1 or last != "nnc: error: out of memory"):
            fail(f"--emit=llvm under {limit} MB: exit {code}, not the message:\n{err[-2000:]}")
        ran_out += code == 1
        fits = fits + 1 if code == 0 else 0
        limit += 12
    if not ran_out:
        fail("no limit made LLVM run out of memory: the test tested nothing")
    print(f"{ran_out} runs out of memory, each with the message")


def test_long_chain(nnc, tmp):
    """1000 elementwise statements compiled at -O2 and trained: LLVM's ScalarEvolution
    recursed through the thousand loops of the checked step and overflowed the 8 MB main
    stack (SIGSEGV); that step now ends each node with a join (cg_profile.c), and the
    compilation has a larger stack of its own (compiler/main.c)."""
    body = "".join(f"    h{i} = h{i - 1} * 0.5 + x\n" for i in range(1, 1001))
    with open(os.path.join(tmp, "long.nn"), "w") as f:
        f.write("model long {\n    input x[2]\n    target t[2]\n    param w[2] = ones\n"
                f"    h0 = w * x\n{body}    loss = mse(h1000, t)\n}}\n"
                "train long { data = [[1, 2] -> [3, 4], [0.5, 1] -> [1, 2]] epochs = 2 batch = 2 }\n")
    code, err, _ = limited(nnc, ["-O2", "long.nn", "-o", "long"], tmp, 4096)
    if code != 0:
        fail(f"-O2 of a 1000-statement chain: exit {code}\n{err[-2000:]}")
    p = subprocess.run(["./long", "--quiet", "--save", "long.npz"], cwd=tmp, capture_output=True, text=True)
    if p.returncode != 0 or not os.path.exists(os.path.join(tmp, "long.npz")):
        fail(f"the 1000-statement chain's executable: exit {p.returncode}\n{p.stderr[-2000:]}")


if __name__ == "__main__":
    main("nnc-scale-", [test_linear_memory, test_many_models, test_out_of_memory, test_long_chain])
