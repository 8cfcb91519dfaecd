"""What the end-to-end scripts of tests/py share: failing, running a command that must
exit with a given status, and the driver every script has (ctest passes --nnc and
--build; the tests run in a fresh folder removed afterwards, also on failure)."""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile


def fail(msg):
    sys.exit("FAIL: " + msg)


def run(cmd, cwd, code=0, timeout=600, env=None):
    """The finished process (text output); a failure unless it exited with `code`."""
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, errors="replace",
                       timeout=timeout, env=env)
    if p.returncode != code:
        fail(f"{' '.join(cmd)} exited {p.returncode}, expected {code}:\n{p.stdout}{p.stderr}")
    return p


def sanitized(build=None):
    """Whether BUILD (by default the --build of this script's command line) is the sanitizer
    build (several times slower: tests do less there)."""
    if build is None and "--build" in sys.argv[:-1]:
        build = sys.argv[sys.argv.index("--build") + 1]
    try:
        with open(os.path.join(build or "", "CMakeCache.txt")) as f:
            return re.search(r"^NNC_SANITIZE:BOOL=ON$", f.read(), re.M) is not None
    except OSError:
        return False


def main(prefix, tests):
    """Runs each of tests(nnc, tmp) in one temporary folder, then prints ok."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--nnc", required=True)
    ap.add_argument("--build")
    args = ap.parse_args()
    nnc = os.path.abspath(args.nnc)
    tmp = tempfile.mkdtemp(prefix=prefix)
    try:
        for test in tests:
            test(nnc, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("ok")
