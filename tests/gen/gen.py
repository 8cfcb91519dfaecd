#!/usr/bin/python3
"""gen.py - random valid programs through the whole of nnc (issue 11).

    gen.py show [--tiny] SEED                print the program of a seed
    gen.py batch --nnc NNC [--seed S] [--count N] [--shard I/K]
                                             programs S:0 .. S:N-1 (this shard's share);
                                             a failure is reduced and reported
    gen.py cases --nnc NNC [CASE.nn ...]     re-run the kept cases (tests/gen/cases), after
                                             a self-test of the oracle's comparisons
    gen.py forever --nnc NNC [--jobs J]      random seeds until stopped, printing counts;
                                             the first failure of each signature (stage
                                             and kind) reduced into tests/gen/cases
    gen.py reduce [--tiny] --nnc NNC SEED    reduce the program of a seed and keep it
    (--tiny: the small programs of the suite's batch, as `batch --tiny` draws them)

Programs come from gendraw.py (what is drawn, as genprog.py structures), genprint.py (the
text and data), oracle.py (what must agree) and reduce.py (shrinking a failure). Program i
of batch S has a seed made from "S:i", so a batch is the same programs on every machine
(for one version of gendraw.py).
"""
import argparse
import concurrent.futures
import os
import random
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import gendraw  # noqa: E402
import genprint  # noqa: E402
import genprog  # noqa: E402
import oracle  # noqa: E402
import reduce  # noqa: E402

CASES = os.path.join(HERE, "cases")


def seed_of(base, i):
    """A program seed: an integer from the batch seed and the index."""
    return random.Random("%s:%d" % (base, i)).getrandbits(48)


def show(args):
    p = gendraw.generate(int(args.seed), args.tiny)
    text, files = genprint.program_text(p)
    print(text)
    for name in files:
        print("# file:", name)
    print("# precision %s, run %s" % (p.precision, p.run))


def reduce_and_keep(nnc, prog, failure, out_dir, budget):
    if failure.stage == "gen":
        return None
    small = reduce.reduce(nnc, prog, failure, budget=budget)
    path = reduce.save_case(small, failure, out_dir)
    print("reduced to %s" % path, flush=True)
    return path


def one(nnc, seed, tiny=False):
    try:
        prog = gendraw.generate(seed, tiny)
    except Exception as e:  # a generator bug: reported as a failure, not a crash of the run
        return genprog.Program(seed), oracle.Failure("gen", "exception", repr(e))
    return prog, oracle.check_program(nnc, prog, oracle.QUICK_STAGES if tiny else oracle.STAGES)


def batch(args):
    nnc = os.path.abspath(args.nnc)
    shard, nshards = (int(x) for x in args.shard.split("/"))
    indices = [i for i in range(args.count) if i % nshards == shard]
    start = time.time()
    failed = []
    for i in indices:
        seed = seed_of(args.seed, i)
        prog, f = one(nnc, seed, args.tiny)
        if f:
            print("FAIL program %s:%d (%s; again: gen.py reduce --tiny --nnc NNC %d): %s" % (
                args.seed, i, prog.precision, seed, f), flush=True)
            failed.append((seed, prog, f))
    for seed, prog, f in failed:
        if args.reduce:
            reduce_and_keep(nnc, prog, f, args.out, args.budget)
    print("%d of %d programs agree (batch %s, shard %s) in %.0f s" % (
        len(indices) - len(failed), len(indices), args.seed, args.shard, time.time() - start))
    return 1 if failed else 0


def cases(args):
    """The kept cases, after the oracle's own checks."""
    broken = oracle.self_test()
    for what in broken:
        print("FAIL: the oracle's self-test: %s" % what)
    nnc = os.path.abspath(args.nnc)
    paths = args.files or sorted(os.path.join(CASES, f) for f in os.listdir(CASES) if f.endswith(".nn"))
    bad = 0
    for path in paths:
        why, xfail = reduce.run_case(nnc, path)
        if why:
            bad += 1
            print("FAIL %s: %s" % (os.path.basename(path), why), flush=True)
        else:
            print("%s %s%s" % ("xfail" if xfail else "ok", os.path.basename(path),
                               " (a known bug: %s)" % xfail if xfail else ""))
    print("%d of %d kept cases pass" % (len(paths) - bad, len(paths)))
    return 1 if bad or broken else 0


def status(done, failed, start):
    w = oracle.WORST
    return ("%d programs, %d failed, %.0f s; largest weight difference: f64 %.2g, f32 %.2g "
            "of the tolerance" % (done, failed, time.time() - start, w["f64"], w["f32"]))


def stop_on_term(signum, frame):
    raise KeyboardInterrupt


def forever(args):
    signal.signal(signal.SIGTERM, stop_on_term)   # kill prints the counts too
    nnc = os.path.abspath(args.nnc)
    rng = random.Random()
    done = failed = 0
    start = time.time()
    seen = set()
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs)
    pending = {pool.submit(one, nnc, rng.getrandbits(48)) for _ in range(args.jobs)}
    try:
        while pending:
            finished, pending = concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
            for fut in finished:
                prog, f = fut.result()
                done += 1
                if f:
                    failed += 1
                    print("FAIL seed %d (%s): %s" % (prog.seed, prog.precision, str(f)[:2000]), flush=True)
                    if f.signature() not in seen or args.reduce_all:
                        seen.add(f.signature())
                        reduce_and_keep(nnc, prog, f, args.out, args.budget)
                if done % 50 == 0:
                    print(status(done, failed, start), flush=True)
                if not args.count or done + len(pending) < args.count:
                    pending.add(pool.submit(one, nnc, rng.getrandbits(48)))
    except KeyboardInterrupt:
        print("stopped", flush=True)
        pool.shutdown(wait=False, cancel_futures=True)
    print(status(done, failed, start), flush=True)
    return 1 if failed else 0


def reduce_seed(args):
    nnc = os.path.abspath(args.nnc)
    prog, f = one(nnc, int(args.seed), args.tiny)
    if not f:
        print("seed %s passes" % args.seed)
        return 0
    print("FAIL: %s" % f)
    reduce_and_keep(nnc, prog, f, args.out, args.budget)
    return 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=["show", "batch", "cases", "forever", "reduce"])
    ap.add_argument("seed", nargs="?")
    ap.add_argument("files", nargs="*")
    ap.add_argument("--nnc")
    ap.add_argument("--build")
    ap.add_argument("--seed", dest="base", default="1")
    ap.add_argument("--count", type=int, default=0)
    ap.add_argument("--shard", default="0/1")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--out", default=CASES, help="where reduced failures go")
    ap.add_argument("--budget", type=float, default=600, help="seconds a reduction may take")
    ap.add_argument("--no-reduce", dest="reduce", action="store_false")
    ap.add_argument("--tiny", action="store_true", help="small programs (the suite's batch)")
    ap.add_argument("--reduce-all", action="store_true",
                    help="forever: reduce every failure, not one per signature (stage and kind)")
    args = ap.parse_intermixed_args()
    if args.command == "batch":
        args.seed = args.base
        args.count = args.count or 200
    elif args.command == "cases" and args.seed:
        args.files = [args.seed] + args.files
    cmd = {"show": show, "batch": batch, "cases": cases, "forever": forever, "reduce": reduce_seed}
    return cmd[args.command](args) or 0


if __name__ == "__main__":
    sys.exit(main())
