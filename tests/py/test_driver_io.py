#!/usr/bin/python3
"""What nnc reads and where its output goes (issue 11, section 3).

1. -o through a symlink replaces the file the link names and keeps the link (a dangling
   link makes its target, a relative one is read from the link's folder); -o to a FIFO
   or a character device writes through it and never replaces it.
2. An output that is the input is refused, naming both, for every kind (-o self.nn, a
   link to it, or a source named as the model's default output); the source is untouched.
3. -o DIR is refused as a directory, before any work, and DIR stays as it was.
4. SIGINT or SIGTERM while the linker runs: nnc stops the linker, leaves nothing in
   $TMPDIR and no temporary beside the output, and dies of the signal.
5. A source over 64 MB (/dev/zero, a big file, an endless FIFO) is refused at once; a
   model read through a FIFO compiles.
6. Relative data paths are resolved against the .nn file's folder at compile time: an
   executable built from another folder trains from any working directory.
7. -o - is standard output for text kinds and objects, and refused for executables and
   libraries.
"""
import os
import signal
import stat
import subprocess
import threading
import time

from nnctest import fail, main, run
from test_driver import MODEL  # model tiny, inline data
from test_scale import capped

CSV_MODEL = """model fromcsv {
    input x[2]
    target t[1]
    param W[1, 2] = ones
    loss = mse(W @ x, t)
}
train fromcsv { data = csv("data/rows.csv") epochs = 1 batch = 2 }
"""


def write(path, text):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def read(path, mode="r"):
    with open(path, mode) as f:
        return f.read()


def no_temporaries(folder, what):
    left = [n for n in os.listdir(folder) if ".tmp" in n]
    if left:
        fail(f"{what}: temporaries left in {folder}: {left}")


# ---- 1. symlinks, FIFOs, devices ----

def reader(path, got):
    """A daemon thread reading the FIFO at path whole into got (it never joins if no one
    writes: a replaced FIFO leaves it blocked, which the caller reports)."""
    def body():
        with open(path, "rb") as f:
            got.append(f.read())
    t = threading.Thread(target=body, daemon=True)
    t.start()
    return t


def test_fifo(nnc, tmp):
    fifo = os.path.join(tmp, "pipe")
    for args, want in ((["--emit=ir"], b"forward pass"), ([], b"\x7fELF")):
        os.mkfifo(fifo)
        got = []
        t = reader(fifo, got)
        p = subprocess.run([nnc] + args + ["tiny.nn", "-o", "pipe"], cwd=tmp,
                           capture_output=True, text=True, timeout=120)
        t.join(30)
        if p.returncode != 0 or not stat.S_ISFIFO(os.lstat(fifo).st_mode):
            fail(f"nnc {args} -o FIFO: exit {p.returncode}, the FIFO was replaced\n{p.stderr}")
        if not got or not got[0].startswith(want):
            fail(f"nnc {args} -o FIFO: the reader did not get the output")
        os.remove(fifo)
    no_temporaries(tmp, "-o FIFO")


def test_char_device(nnc, tmp):
    dev = os.path.join(tmp, "null")
    try:
        os.mknod(dev, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a private /dev/null
    except OSError as e:
        print(f"skipped: -o to a character device (mknod: {e.strerror})")
        return
    for args in (["--emit=ir"], ["--emit=obj"], []):
        run([nnc] + args + ["tiny.nn", "-o", "null"], tmp)
        st = os.lstat(dev)
        if not stat.S_ISCHR(st.st_mode) or st.st_rdev != os.makedev(1, 3):
            fail(f"nnc {args} -o DEVICE replaced the device")
    os.remove(dev)
    no_temporaries(tmp, "-o DEVICE")


def test_symlinks(nnc, tmp):
    write(os.path.join(tmp, "links/real.ir"), "old\n")
    os.makedirs(os.path.join(tmp, "links2"))
    os.symlink("real.ir", os.path.join(tmp, "links/l2"))  # relative to links/
    os.symlink("../links/l2", os.path.join(tmp, "links2/l1"))
    run([nnc, "--emit=ir", "tiny.nn", "-o", "links2/l1"], tmp)
    for link, target in (("links2/l1", "../links/l2"), ("links/l2", "real.ir")):
        path = os.path.join(tmp, link)
        if not os.path.islink(path) or os.readlink(path) != target:
            fail(f"-o LINK replaced the link {link}")
    if "forward pass" not in read(os.path.join(tmp, "links/real.ir")):
        fail("-o LINK did not write the file the links name")
    os.symlink("made/new", os.path.join(tmp, "links/dangling"))
    os.makedirs(os.path.join(tmp, "links/made"))
    run([nnc, "tiny.nn", "-o", "links/dangling"], tmp)
    if not os.path.islink(os.path.join(tmp, "links/dangling")) or \
            not os.access(os.path.join(tmp, "links/made/new"), os.X_OK):
        fail("-o DANGLING-LINK did not make the executable the link names")
    for folder in ("links", "links2", "links/made"):
        no_temporaries(os.path.join(tmp, folder), "-o LINK")


# ---- 2. and 3. outputs that must not be written ----

def refused(nnc, tmp, args, words, what):
    p = run([nnc] + args, tmp, code=1)
    if not all(w in p.stderr for w in words):
        fail(f"{what}: the message lacks {words}:\n{p.stderr}")


def test_output_is_input(nnc, tmp):
    write(os.path.join(tmp, "self.nn"), MODEL)
    os.symlink("self.nn", os.path.join(tmp, "alias.nn"))
    for kind in ("", "--emit=tokens", "--emit=ast", "--emit=ir", "--emit=grad", "--emit=llvm",
                 "--emit=asm", "--emit=obj", "--emit=exe"):
        for out in ("self.nn", "./self.nn", "alias.nn"):
            args = ([kind] if kind else []) + ["self.nn", "-o", out]
            refused(nnc, tmp, args, [f"'-o {out}'", "input file 'self.nn'"], f"nnc {' '.join(args)}")
    # the model's default output names: ./tiny for an executable, tiny.o for an object
    write(os.path.join(tmp, "same/tiny"), MODEL)
    write(os.path.join(tmp, "same/tiny.o"), MODEL)
    refused(nnc, os.path.join(tmp, "same"), ["tiny"], ["'tiny'", "input file 'tiny'", "-o"],
            "a source named as its default output")
    refused(nnc, os.path.join(tmp, "same"), ["--emit=obj", "tiny.o"],
            ["'tiny.o'", "input file 'tiny.o'"], "--emit=obj of a source named MODEL.o")
    for path in ("self.nn", "same/tiny", "same/tiny.o"):
        if read(os.path.join(tmp, path)) != MODEL:
            fail(f"{path}: the source was changed")
    no_temporaries(tmp, "output is input")


def test_output_is_folder(nnc, tmp):
    os.makedirs(os.path.join(tmp, "outdir"))
    for kind in ([], ["--emit=ir"], ["--emit=obj"]):
        for out in ("outdir", "outdir/"):
            refused(nnc, tmp, kind + ["tiny.nn", "-o", out], [f"'-o {out}': is a directory"],
                    f"-o {out}")
    if os.listdir(os.path.join(tmp, "outdir")):
        fail("-o DIR wrote into the folder")


# ---- 4. signals ----

FAKE_CC = """#!/bin/sh
echo $$ > "$NNC_TEST_MARK.tmp" && mv "$NNC_TEST_MARK.tmp" "$NNC_TEST_MARK"
exec sleep 60
"""


def wait_for(path, seconds):
    end = time.time() + seconds
    while not os.path.exists(path):
        if time.time() > end:
            fail(f"{path} did not appear in {seconds} s")
        time.sleep(0.05)


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def test_signals(nnc, tmp):
    """A fake cc that sleeps holds nnc in the link, with its temporary folder, the object
    and the link's output in it."""
    fake = os.path.join(tmp, "fakebin")
    write(os.path.join(fake, "cc"), FAKE_CC)
    os.chmod(os.path.join(fake, "cc"), 0o755)
    scratch, out, mark = (os.path.join(tmp, n) for n in ("scratch", "sigout", "cc.pid"))
    os.makedirs(scratch)
    os.makedirs(out)
    env = dict(os.environ, PATH=fake + ":" + os.environ.get("PATH", ""), TMPDIR=scratch,
               NNC_TEST_MARK=mark)
    for sig in (signal.SIGINT, signal.SIGTERM):
        p = subprocess.Popen([nnc, os.path.join(tmp, "tiny.nn"), "-o", "tiny"], cwd=out, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(mark, 120)
        cc = int(read(mark))
        p.send_signal(sig)
        status = p.wait(timeout=60)
        os.remove(mark)
        cc_left = alive(cc)
        if cc_left:
            os.kill(cc, signal.SIGKILL)
        if status != -sig:
            fail(f"{signal.Signals(sig).name} while linking: exit {status}, not the signal")
        if os.listdir(scratch) or os.listdir(out):
            fail(f"{signal.Signals(sig).name} while linking left {os.listdir(scratch)} in "
                 f"$TMPDIR and {os.listdir(out)} beside the output")
        if cc_left:
            fail(f"{signal.Signals(sig).name} while linking left the linker running")


# ---- 5. big sources ----

def test_source_limit(nnc, tmp):
    write(os.path.join(tmp, "huge.nn"), "")
    os.truncate(os.path.join(tmp, "huge.nn"), 65 << 20)
    for src in ("/dev/zero", "huge.nn"):
        p = subprocess.run([nnc, "--emit=ast", src], cwd=tmp, capture_output=True, text=True,
                           timeout=120, preexec_fn=capped(nnc, 1024))
        if p.returncode != 1 or f"'{src}' is larger than 64 MB" not in p.stderr:
            fail(f"nnc {src}: exit {p.returncode}, not the size limit:\n{p.stderr[-500:]}")
    fifo = os.path.join(tmp, "model.fifo")
    os.mkfifo(fifo)

    def feed(data):
        try:
            with open(fifo, "wb") as f:
                f.write(data)
        except BrokenPipeError:
            pass  # nnc stopped reading: the limit

    for data, code in ((MODEL.encode(), 0), (b"#" * (70 << 20), 1)):
        threading.Thread(target=feed, args=(data,), daemon=True).start()
        p = subprocess.run([nnc, "--emit=ast", "model.fifo"], cwd=tmp, capture_output=True,
                           text=True, timeout=120, preexec_fn=capped(nnc, 1024))
        if p.returncode != code or (code == 0 and "model tiny" not in p.stdout):
            fail(f"a source through a FIFO ({len(data)} bytes): exit {p.returncode}\n{p.stderr}")
    os.remove(fifo)


# ---- 6. data paths ----

def test_data_paths(nnc, tmp):
    proj, elsewhere = os.path.join(tmp, "proj"), os.path.join(tmp, "elsewhere")
    write(os.path.join(proj, "fromcsv.nn"), CSV_MODEL)
    write(os.path.join(proj, "data/rows.csv"), "1,2,3\n0,1,1\n2,0,2\n")
    os.makedirs(elsewhere)
    run([nnc, "proj/fromcsv.nn", "-o", "elsewhere/fc"], tmp)
    p = run(["./fc", "--quiet"], elsewhere)
    if "train: loss" not in p.stdout:
        fail(f"the executable from elsewhere did not train:\n{p.stdout}")
    for mode in ("--run", "--interp"):
        p = run([nnc, mode, "proj/fromcsv.nn", "--", "--quiet", "--save", "elsewhere/w.npz"], tmp)
        if "train: loss" not in p.stdout:
            fail(f"nnc {mode} proj/fromcsv.nn did not train:\n{p.stdout}")


def test_dash_is_stdout(nnc, tmp):
    """-o - writes text kinds and objects to standard output (no file named '-'); an
    executable or a library must be named."""
    sub = os.path.join(tmp, "dash")
    os.makedirs(sub)
    src = os.path.join(tmp, "tiny.nn")
    for kind, want in (("ir", b"forward pass for one sample:"), ("llvm", b"; ModuleID"),
                       ("obj", b"\x7fELF")):
        p = subprocess.run([nnc, "--emit=" + kind, "-o", "-", src], cwd=sub, capture_output=True)
        if p.returncode != 0 or not p.stdout.startswith(want):
            fail(f"--emit={kind} -o -: exit {p.returncode}, stdout {p.stdout[:40]!r}\n{p.stderr.decode()}")
    for flags in ([], ["--emit=exe"], ["--emit=lib"], ["--emit=shared"]):
        p = run([nnc, *flags, "-o", "-", src], sub, code=1)
        if "-o -:" not in p.stderr or "not standard output" not in p.stderr:
            fail(f"{flags} -o -: {p.stderr}")
    if os.listdir(sub):
        fail(f"-o - left files: {os.listdir(sub)}")


def setup(nnc, tmp):
    write(os.path.join(tmp, "tiny.nn"), MODEL)


if __name__ == "__main__":
    main("nnc-driver-io-", [setup, test_fifo, test_char_device, test_symlinks,
                            test_output_is_input, test_output_is_folder, test_signals,
                            test_source_limit, test_data_paths, test_dash_is_stdout])
