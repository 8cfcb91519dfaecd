#!/usr/bin/python3
"""Golden test runner, in the style of LLVM's lit.

A case is tests/<group>/<case>.nn holding a line

    # RUN: nnc --emit=ast %s

and optionally `# EXIT: N` (expected exit status, default 0). The command runs in the
case's folder through sh; `nnc` at the start of a command is the compiler under test,
%s is the case file's name, %t a fresh temporary folder. Its stdout must equal
<case>.out and its stderr <case>.err. Both files must exist: a case that prints nothing
on a stream says so with an empty file, so a lost or misnamed expectation is a failure,
not a silent "expect nothing".

    golden.py --nnc build/nnc tests/errors/*.nn           check
    golden.py --nnc build/nnc --update tests/errors/x.nn  rewrite the expectations (an
                                                           empty output an empty file);
                                                           read the diff it prints
    golden.py --self-test                                  the runner's own checks
"""
import argparse
import difflib
import os
import re
import shlex
import subprocess
import sys
import tempfile


def directives(text):
    run = re.search(r"^(?:#|//) RUN: (.*)$", text, re.M)
    exit_ = re.search(r"^(?:#|//) EXIT: (\d+)\s*$", text, re.M)
    return (run.group(1) if run else None), (int(exit_.group(1)) if exit_ else 0)


def expand(cmd, nnc, case, tmp):
    cmd = re.sub(r"(^|[;&|]\s*)nnc(?=\s)", lambda m: m.group(1) + shlex.quote(nnc), cmd)
    return (cmd.replace("%s", shlex.quote(os.path.basename(case)))
               .replace("%t", shlex.quote(tmp)))


def read(path):
    """The expectation in path; None when there is no such file."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return None


def show_diff(label, expected, actual):
    sys.stdout.writelines(difflib.unified_diff(
        expected.splitlines(True), actual.splitlines(True),
        "expected " + label, "actual " + label))
    if not actual.endswith("\n"):
        print()


def write_expectation(path, text, existed):
    """Writes the expectation, an empty output as an empty file: --update never deletes."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    print(("updated %s" if existed else "created %s") % path
          + ("" if text else " (empty: the case prints nothing there)"))


def run_case(case, nnc, update):
    with open(case, "rb") as f:
        text = f.read().decode("utf-8", errors="replace")
    cmd, want_exit = directives(text)
    if cmd is None:
        print(f"{case}: no RUN line")
        return False
    base = os.path.splitext(case)[0]
    with tempfile.TemporaryDirectory(prefix="nnc-golden-") as tmp:
        proc = subprocess.run(["sh", "-c", expand(cmd, nnc, case, tmp)],
                              cwd=os.path.dirname(os.path.abspath(case)),
                              capture_output=True, timeout=300)
    out = proc.stdout.decode("utf-8", errors="replace")
    err = proc.stderr.decode("utf-8", errors="replace")
    ok = True
    for suffix, actual in ((".out", out), (".err", err)):
        expected = read(base + suffix)
        if expected == actual:
            continue
        if expected is None:
            print(f"{case}: no expectation {os.path.basename(base + suffix)}; the case "
                  f"{'prints nothing there: create it empty' if not actual else 'printed'}"
                  + ("" if not actual else ":\n" + actual.rstrip("\n")))
        else:
            show_diff(os.path.basename(base) + suffix, expected, actual)
        if update:
            write_expectation(base + suffix, actual, expected is not None)
        else:
            ok = False
    if proc.returncode != want_exit:
        print(f"{case}: exit status {proc.returncode}, expected {want_exit}"
              + (" (fix the EXIT line by hand)" if update else ""))
        ok = False
    return ok


def self_test():
    """The runner fails what it must: a missing expectation, a wrong one, a wrong exit
    status; --update creates an empty expectation instead of deleting one. The compiler
    is a stand-in script that echoes its arguments."""
    with tempfile.TemporaryDirectory(prefix="nnc-golden-self-") as tmp:
        nnc = os.path.join(tmp, "fake-nnc")
        with open(nnc, "w") as f:
            f.write("#!/bin/sh\necho \"$@\"\n")
        os.chmod(nnc, 0o755)
        case = os.path.join(tmp, "c.nn")

        def setup(run, out=None, err=None, exit_=None):
            with open(case, "w") as f:
                f.write("# RUN: nnc %s\n" % run + ("# EXIT: %d\n" % exit_ if exit_ is not None else ""))
            for suffix, text in ((".out", out), (".err", err)):
                path = os.path.join(tmp, "c" + suffix)
                if text is None:
                    if os.path.exists(path):
                        os.remove(path)
                else:
                    with open(path, "w") as f:
                        f.write(text)

        def quiet_run(update=False):
            saved = sys.stdout
            sys.stdout = open(os.devnull, "w")
            try:
                return run_case(case, nnc, update)
            finally:
                sys.stdout.close()
                sys.stdout = saved

        checks = []
        setup("hi %s", out="hi c.nn\n", err="")
        checks.append(("both expectations right", quiet_run()))
        setup("hi %s", out="hi c.nn\n")
        checks.append(("no .err file", not quiet_run()))
        setup("x >/dev/null", err="")
        checks.append(("no .out file, the case printing nothing", not quiet_run()))
        setup("hi %s", out="bye\n", err="")
        checks.append(("a wrong .out", not quiet_run()))
        setup("hi %s", out="hi c.nn\n", err="", exit_=1)
        checks.append(("a wrong exit status", not quiet_run()))
        setup("hi %s", out="hi c.nn\n")
        quiet_run(update=True)
        checks.append(("--update creates an empty .err", os.path.exists(os.path.join(tmp, "c.err"))))
        setup("x >/dev/null", out="old\n", err="")
        quiet_run(update=True)
        checks.append(("--update keeps an emptied .out", os.path.exists(os.path.join(tmp, "c.out"))))
        checks.append(("and then passes", quiet_run()))
    bad = [what for what, ok in checks if not ok]
    for what in bad:
        print("FAIL self-test:", what)
    print(f"self-test: {len(checks) - len(bad)} of {len(checks)} checks pass")
    return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nnc")
    ap.add_argument("--update", action="store_true")
    ap.add_argument("--self-test", action="store_true")
    ap.add_argument("cases", nargs="*")
    args = ap.parse_args()
    if args.self_test:
        return self_test()
    if not args.nnc or not args.cases:
        ap.error("--nnc and at least one case are needed")
    nnc = os.path.abspath(args.nnc)
    failed = [c for c in args.cases if not run_case(c, nnc, args.update)]
    for c in failed:
        print(f"FAIL {c}")
    print(f"{len(args.cases) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
