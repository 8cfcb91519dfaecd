#!/usr/bin/python3
"""make install PREFIX=P (spec 11): an nnc that works after its build folder is deleted.

`make install PREFIX=P BUILD=...` configures, builds and installs from a fresh build folder
in a temporary place (never the suite's own build), which is then deleted. The installed nnc compiles and trains xor,
still does after the prefix is moved (it finds its runtime beside itself), and takes its
runtime from NNC_RUNTIME_DIR when that is set (an empty folder there is an error naming it).
`man` shows the installed nnc(1) page (nroff when man-db is not installed).
"""
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nnctest import sanitized as instrumented  # noqa: E402
from nnctest import fail, main, run  # noqa: E402


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INSTALLED = ["bin/nnc", "lib/nnc/libnncrt.a", "lib/nnc/nncrt_main.o", "lib/nnc/nnc_rt.h",
             "include/nnc/nnc_rt.h", "share/man/man1/nnc.1"]


def install(tmp):
    """A fresh build in tmp/build installed into tmp/prefix; the build folder deleted."""
    build, prefix = os.path.join(tmp, "build"), os.path.join(tmp, "prefix")
    run(["make", "-C", ROOT, "--no-print-directory", "install", f"BUILD={build}", f"PREFIX={prefix}"],
        tmp, timeout=900)
    for f in INSTALLED:
        if not os.path.isfile(os.path.join(prefix, f)):
            fail(f"make install did not install {f}")
    shutil.rmtree(build)
    return prefix


def train_xor(nnc, tmp, env=None, code=0):
    src = os.path.join(tmp, "xor.nn")
    shutil.copy(os.path.join(ROOT, "examples", "xor.nn"), src)
    exe = os.path.join(tmp, "xor")
    p = subprocess.run([nnc, src, "-o", exe], cwd=tmp, capture_output=True, text=True, env=env)
    if p.returncode != code:
        fail(f"installed nnc exited {p.returncode}, expected {code}:\n{p.stdout}{p.stderr}")
    if code:
        return p.stderr
    out = run([exe, "--quiet"], tmp).stdout
    m = re.search(r"train: loss ([0-9.]+)", out)
    if not m or float(m.group(1)) > 0.01:
        fail(f"xor built by the installed nnc did not learn:\n{out}")
    os.remove(exe)
    return out


def check_man(prefix, tmp):
    page = os.path.join(prefix, "share", "man", "man1", "nnc.1")
    env = dict(os.environ, MANPAGER="cat", PAGER="cat", MANWIDTH="80",
               MANPATH=os.path.join(prefix, "share", "man"))
    if shutil.which("man"):
        cmds = [["man", "nnc"], ["man", "-l", page]]
    elif shutil.which("nroff"):
        cmds = [["nroff", "-man", page]]
    else:
        print("note: neither man nor nroff is installed: nnc(1) not rendered")
        return
    for cmd in cmds:
        p = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, env=env)
        text = " ".join(re.sub(r".\x08", "", p.stdout).replace("\u2010", "-").split())
        if p.returncode != 0 or "NAME" not in text or "nnc - compile" not in text:
            fail(f"{' '.join(cmd)} did not show nnc(1) (exit {p.returncode}):\n{p.stdout[:500]}{p.stderr}")
        for section in ("SYNOPSIS", "OPTIONS", "ENVIRONMENT", "NNC_RUNTIME_DIR", "--predict"):
            if section not in text:
                fail(f"{' '.join(cmd)}: no {section} in the page")


def test_install(nnc, tmp):
    prefix = install(tmp)
    train_xor(os.path.join(prefix, "bin", "nnc"), tmp)
    moved = os.path.join(tmp, "moved")
    os.rename(prefix, moved)
    train_xor(os.path.join(moved, "bin", "nnc"), tmp)
    empty = os.path.join(tmp, "empty")
    os.mkdir(empty)
    err = train_xor(os.path.join(moved, "bin", "nnc"), tmp, dict(os.environ, NNC_RUNTIME_DIR=empty), code=1)
    if "NNC_RUNTIME_DIR" not in err or empty not in err:
        fail(f"an empty NNC_RUNTIME_DIR: expected a message naming it, got:\n{err}")
    rt = os.path.join(tmp, "rt")
    shutil.copytree(os.path.join(moved, "lib", "nnc"), rt)
    train_xor(os.path.join(moved, "bin", "nnc"), tmp, dict(os.environ, NNC_RUNTIME_DIR=rt))
    check_man(moved, tmp)


if __name__ == "__main__":
    if "--build" in sys.argv and instrumented(sys.argv[sys.argv.index("--build") + 1]):
        print("ok (the normal build's run covers it: this test builds nnc afresh)")
        sys.exit(0)
    main("nnc-install-", [test_install])
