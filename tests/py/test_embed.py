#!/usr/bin/python3
"""nnc --emit=lib / --emit=shared (spec section 11) and examples/embed/.

- examples/embed/train_xor.c links libxor.a with `cc app.c libxor.a -lm -lz -lpthread`,
  trains, predicts and saves; examples/embed/predict.py loads libxor.so with ctypes and
  predicts the same values from the saved weights.
- A program written from the spec's header text alone (every declaration used as the spec
  shows it) compiles with -Wall -Werror against the generated header, in f32 and f64.
- train_step runs the executable's generated step: a loop of train_step over the
  executable's batches (shuffle = false, a short last batch) gives the executable's .npz
  bytes, for sgd, momentum and adam (adam's t goes on across calls), f32 and f64.
- Models are independent: two models trained in two threads at once give the bytes of one
  trained alone, and one thread's error message is not the other's.
- Two models' libraries link into one program (each holds its own runtime, whose symbols
  are local): only the NAME_ functions are global.
- Errors: load of a missing or broken file (-1, the message, the model unchanged), an
  unknown param (NULL), a step whose loss is NaN (NaN returned, the weights unchanged).
"""
import os
import re
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nnctest import sanitized as instrumented  # noqa: E402
from nnctest import fail, main, run  # noqa: E402


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EMBED = os.path.join(ROOT, "examples", "embed")
BUILD = None  # --build, for the sanitizer flags


def cc_flags():
    """Programs linking a library of the sanitizer build's runtime need its sanitizers."""
    return ["-fsanitize=address,undefined"] if instrumented(BUILD) else []


def cc(tmp, out, *args):
    run(["cc", "-Wall", "-Wextra", "-Werror", "-I", tmp, *args, "-lm", "-lz", "-lpthread",
         *cc_flags(), "-o", out], tmp)
    return out


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def test_example(nnc, tmp):
    xor = os.path.join(ROOT, "examples", "xor.nn")
    run([nnc, "--emit=lib", xor], tmp)  # libxor.a and xor.h in the working folder
    for f in ("libxor.a", "xor.h"):
        if not os.path.isfile(os.path.join(tmp, f)):
            fail(f"--emit=lib without -o did not write {f}")
    exe = cc(tmp, os.path.join(tmp, "train_xor"), os.path.join(EMBED, "train_xor.c"),
             os.path.join(tmp, "libxor.a"))
    out = run([exe], tmp).stdout
    loss = float(re.search(r"loss ([0-9.]+)", out).group(1))
    preds = [float(v) for v in re.findall(r"= ([0-9.]+)", out)]
    if loss > 0.01 or [round(p) for p in preds] != [0, 1, 1, 0]:
        fail(f"train_xor did not learn xor:\n{out}")
    if instrumented(BUILD):
        return  # a sanitized .so does not load into an uninstrumented python
    run([nnc, "--emit=shared", xor, "-o", os.path.join(tmp, "libxor.so")], tmp)
    py = run(["/usr/bin/python3", os.path.join(EMBED, "predict.py")], tmp).stdout
    if re.findall(r"= ([0-9.]+)", py) != re.findall(r"= ([0-9.]+)", out):
        fail(f"predict.py's predictions differ from train_xor's:\n{py}\n{out}")
    nm = run(["nm", "-D", "--defined-only", os.path.join(tmp, "libxor.so")], tmp).stdout
    names = sorted(line.split()[-1] for line in nm.splitlines() if line.strip())
    want = sorted(f"xor_{f}" for f in ("new", "free", "load", "save", "error", "predict", "train_step", "param"))
    if names != want:
        fail(f"libxor.so exports {names}, expected {want}")


# The spec's header text, section 11, with NAME = m and the precision's real.
SPEC_APP = r"""
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "m.h"

int main(void)
{
    REAL x[2 * m_INPUT_SIZE], y[2 * m_OUTPUT_SIZE], t[2 * m_TARGET_SIZE];
    for (int i = 0; i < 2 * m_INPUT_SIZE; i++) x[i] = (REAL)(i % 3) / 3;
    for (int i = 0; i < 2 * m_TARGET_SIZE; i++) t[i] = (REAL)(i % 2);
    m_model *m = m_new(7ULL);
    if (!m) return 1;
    REAL before = m_train_step(m, 2, x, t);
    REAL after = before;
    for (int s = 0; s < 50; s++) after = m_train_step(m, 2, x, t);
    m_predict(m, 2, x, y);
    int count = 0;
    REAL *w = m_param(m, "W", &count);
    if (!w || count != 3 * m_INPUT_SIZE || m_param(m, "nope", &count) || !*m_error()) return 2;
    if (m_save(m, "m.npz") != 0 || m_load(m, "m.npz") != 0) return 3;
    if (m_load(m, "missing.npz") != -1 || !strstr(m_error(), "missing.npz")) return 4;
    const m_model *c = m;
    if (m_save(c, "m2.npz") != 0) return 5;
    printf("%.6f %.6f %.6f\n", (double)before, (double)after, (double)y[0]);
    m_free(m);
    return !(after < before) || !isfinite(y[0]);
}
"""

SMALL = """model m {
    input x[4]
    target t[3]
    param W[3, 4] = xavier
    param b[3] = zeros
    y = softmax(W @ x + b)
    loss = cross_entropy(y, t)
}
train m { data = [[0, 0, 0, 1] -> [1, 0, 0]]  optimizer = adam(lr = 0.01) }
"""


def test_spec_header(nnc, tmp):
    src = write(os.path.join(tmp, "m.nn"), SMALL)
    for prec, real in (("f32", "float"), ("f64", "double")):
        lib = os.path.join(tmp, "libm.a")
        run([nnc, "--emit=lib", f"--precision={prec}", src, "-o", lib], tmp)
        header = open(os.path.join(tmp, "m.h")).read()
        for decl in (f"{real} *m_param(m_model *m, const char *name, int *count);",
                     f"void m_predict(m_model *m, int n, const {real} *x, {real} *y);",
                     "int m_save(const m_model *m, const char *npz);"):
            if decl not in header:
                fail(f"m.h ({prec}) lacks `{decl}`")
        app = write(os.path.join(tmp, "app.c"), SPEC_APP.replace("REAL", real))
        exe = cc(tmp, os.path.join(tmp, "app"), app, lib)
        run([exe], tmp)


# A loop of train_step over the executable's batches, in order; then save.
STEPS_APP = r"""
#include <stdio.h>
#include <stdlib.h>
#include "NAME.h"

static REAL *read_all(const char *path, long n)
{
    REAL *p = malloc(sizeof *p * (size_t)n);
    FILE *f = fopen(path, "rb");
    if (!p || !f || fread(p, sizeof *p, (size_t)n, f) != (size_t)n) exit(2);
    fclose(f);
    return p;
}

int main(int argc, char **argv)
{
    if (argc != 6) return 4;
    int n = atoi(argv[1]), batch = atoi(argv[2]), epochs = atoi(argv[3]);
    REAL *x = read_all("x.bin", (long)n * NAME_INPUT_SIZE), *t = read_all("t.bin", (long)n * NAME_TARGET_SIZE);
    NAME_model *m = NAME_new(strtoull(argv[4], NULL, 10));
    for (int e = 0; e < epochs; e++)
        for (int at = 0; at < n; at += batch) {
            int k = n - at < batch ? n - at : batch;
            REAL loss = NAME_train_step(m, k, x + (long)at * NAME_INPUT_SIZE, t + (long)at * NAME_TARGET_SIZE);
            if (loss != loss) { fprintf(stderr, "%s\n", NAME_error()); return 1; }
        }
    if (NAME_save(m, argv[5]) != 0) return 3;
    NAME_free(m);
    free(x);
    free(t);
    return 0;
}
"""

NET = """model net {
    input x[3]
    target t[2]
    h = dense(x, 5, tanh)
    y = dense(h, 2)
    loss = mse(y, t)
}
train net {
    data = csv("d.csv")
    epochs = 4
    batch = 8
    optimizer = OPT
    seed = 5
    shuffle = false
}
"""


def test_same_bytes(nnc, tmp):
    sub = os.path.join(tmp, "bytes")
    os.mkdir(sub)
    rng = np.random.default_rng(3)
    n = 29  # batches of 8: the last one short
    x, t = rng.uniform(-1, 1, (n, 3)), rng.uniform(-1, 1, (n, 2))
    write(os.path.join(sub, "d.csv"), "".join(",".join(f"{v:.6f}" for v in r) + "\n" for r in np.hstack([x, t])))
    for opt in ("sgd(lr = 0.1)", "sgd(lr = 0.05, momentum = 0.9)", "adam(lr = 0.01)"):
        for prec, dtype, real in (("f32", np.float32, "float"), ("f64", np.float64, "double")):
            src = write(os.path.join(sub, "net.nn"), NET.replace("OPT", opt))
            run([nnc, src, f"--precision={prec}", "-o", os.path.join(sub, "net")], sub)
            run([os.path.join(sub, "net"), "--quiet", "--save", "exe.npz"], sub)
            run([nnc, "--emit=lib", f"--precision={prec}", src, "-o", os.path.join(sub, "libnet.a")], sub)
            # the values as the executable read them from the csv
            for name, a in (("x.bin", x), ("t.bin", t)):
                np.array([[float(f"{v:.6f}") for v in r] for r in a], dtype).tofile(os.path.join(sub, name))
            app = write(os.path.join(sub, "steps.c"), STEPS_APP.replace("NAME", "net").replace("REAL", real))
            exe = cc(sub, os.path.join(sub, "steps"), app, os.path.join(sub, "libnet.a"))
            run([exe, str(n), "8", "4", "5", "lib.npz"], sub)
            if open(os.path.join(sub, "exe.npz"), "rb").read() != open(os.path.join(sub, "lib.npz"), "rb").read():
                fail(f"{opt} {prec}: train_step's weights differ from the executable's")


THREADS_APP = r"""
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include "net.h"

static float x[64 * net_INPUT_SIZE], t[64 * net_TARGET_SIZE];
static pthread_barrier_t meet;
typedef struct { const char *out; int fail_load, meets; char error[256]; int rc; } Job;

/* Halfway, a's load fails while b waits; b reads its own message after it: "". */
static void *train(void *arg)
{
    Job *j = arg;
    net_model *m = net_new(5);
    for (int s = 0; s < 300; s++) {
        if (s == 150 && j->fail_load && net_load(m, "missing.npz") == 0) j->rc = 1;
        if (s == 150 && j->meets) pthread_barrier_wait(&meet);
        if (s == 150) snprintf(j->error, sizeof j->error, "%s", net_error());
        if (s == 150 && j->meets) pthread_barrier_wait(&meet);
        net_train_step(m, 64, x, t);
    }
    if (net_save(m, j->out) != 0) j->rc = 2;
    net_free(m);
    return NULL;
}

int main(void)
{
    for (int i = 0; i < 64 * net_INPUT_SIZE; i++) x[i] = (float)((i * 7) % 11) / 11 - 0.5f;
    for (int i = 0; i < 64 * net_TARGET_SIZE; i++) t[i] = (float)((i * 5) % 7) / 7 - 0.5f;
    Job alone = {"alone.npz", 0, 0, "", 0}, a = {"a.npz", 1, 1, "", 0}, b = {"b.npz", 0, 1, "", 0};
    train(&alone);
    pthread_barrier_init(&meet, NULL, 2);
    pthread_t ta, tb;
    pthread_create(&ta, NULL, train, &a);
    pthread_create(&tb, NULL, train, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    printf("a: [%s]\nb: [%s]\n", a.error, b.error);
    return alone.rc || a.rc || b.rc;
}
"""


def net_library(nnc, tmp, folder, opt):
    """The folder tmp/folder holding libnet.a and net.h of NET with optimizer opt."""
    sub = os.path.join(tmp, folder)
    os.mkdir(sub)
    write(os.path.join(sub, "d.csv"), "0,0,0,0,0\n")
    src = write(os.path.join(sub, "net.nn"), NET.replace("OPT", opt))
    run([nnc, "--emit=lib", src, "-o", os.path.join(sub, "libnet.a")], sub)
    return sub


def test_threads(nnc, tmp):
    sub = net_library(nnc, tmp, "threads", "adam(lr = 0.01)")
    exe = cc(sub, os.path.join(sub, "threads"), write(os.path.join(sub, "t.c"), THREADS_APP),
             os.path.join(sub, "libnet.a"))
    out = run([exe], sub).stdout
    if "a: [missing.npz" not in out or "b: []" not in out:
        fail(f"error messages are not per thread:\n{out}")
    files = [open(os.path.join(sub, f), "rb").read() for f in ("alone.npz", "a.npz", "b.npz")]
    if files[0] != files[1] or files[0] != files[2]:
        fail("two models trained in two threads differ from one trained alone")


TWO_APP = r"""
#include <stdio.h>
#include "net.h"
#include "xor.h"

int main(void)
{
    float x[2] = {1, 0}, y[net_OUTPUT_SIZE], x3[3] = {0.1f, 0.2f, 0.3f}, t[2] = {0, 1};
    xor_model *a = xor_new(1);
    net_model *b = net_new(2);
    if (xor_load(a, "xor.npz") != 0) return 1;
    xor_predict(a, 1, x, y);
    float loss = net_train_step(b, 1, x3, t);
    printf("%.4f %.4f\n", y[0], loss);
    xor_free(a);
    net_free(b);
    return 0;
}
"""


def test_two_libraries(nnc, tmp):
    sub = net_library(nnc, tmp, "two", "sgd(lr = 0.1)")
    run([nnc, "--emit=lib", os.path.join(ROOT, "examples", "xor.nn"), "-o", os.path.join(sub, "libxor.a")], sub)
    nm = run(["nm", "--defined-only", "-g", os.path.join(sub, "libnet.a")], sub).stdout
    extern = sorted(line.split()[-1] for line in nm.splitlines() if re.match(r"^[0-9a-f]+ [A-Z] ", line))
    if not extern or any(not s.startswith("net_") for s in extern):
        fail(f"libnet.a defines global symbols besides net_*: {extern}")
    exe = os.path.join(sub, "xor")
    run([nnc, os.path.join(ROOT, "examples", "xor.nn"), "-o", exe], sub)
    run([exe, "--quiet", "--save", "xor.npz"], sub)
    app = cc(sub, os.path.join(sub, "two"), write(os.path.join(sub, "two.c"), TWO_APP),
             os.path.join(sub, "libnet.a"), os.path.join(sub, "libxor.a"))
    y = float(run([app], sub).stdout.split()[0])
    pred = run([exe, "--predict", write(os.path.join(sub, "p.csv"), "1,0\n")], sub).stdout.splitlines()[1]
    if abs(y - float(pred.split(",")[1])) > 1e-4:
        fail(f"xor in a program with another model predicts {y}, its executable {pred}")


ERRORS_APP = r"""
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "xor.h"

int main(void)
{
    float x[8] = {0, 0, 0, 1, 1, 0, 1, 1}, t[4] = {0, 1, 1, 0}, y[4], z[4];
    xor_model *m = xor_new(1);
    xor_predict(m, 4, x, y);
    if (xor_load(m, "broken.npz") != -1) return 1;
    printf("load: %s\n", xor_error());
    xor_predict(m, 4, x, z);
    if (memcmp(y, z, sizeof y)) return 2;  /* a failed load changes nothing */
    if (xor_param(m, "W9", NULL) != NULL) return 3;
    printf("param: %s\n", xor_error());
    int n;
    float *w = xor_param(m, "W2", &n);
    float w1 = xor_param(m, "W1", NULL)[0];
    w[0] = NAN;
    float loss = xor_train_step(m, 4, x, t);
    printf("step: %g %s\n", (double)loss, xor_error());
    if (!isnan(w[0]) || xor_param(m, "W1", NULL)[0] != w1 || !isnan(loss)) return 4;
    w[0] = 0.5f;
    loss = xor_train_step(m, 4, x, t);
    printf("again: %g [%s]\n", (double)loss, xor_error());
    xor_free(m);
    return isnan(loss) ? 5 : 0;
}
"""


def test_errors(nnc, tmp):
    sub = os.path.join(tmp, "errors")
    os.mkdir(sub)
    run([nnc, "--emit=lib", os.path.join(ROOT, "examples", "xor.nn"), "-o", os.path.join(sub, "libxor.a")], sub)
    write(os.path.join(sub, "broken.npz"), "PK not a zip")
    exe = cc(sub, os.path.join(sub, "errors"), write(os.path.join(sub, "e.c"), ERRORS_APP),
             os.path.join(sub, "libxor.a"))
    p = run([exe], sub)
    if p.stderr:
        fail(f"the library printed on stderr:\n{p.stderr}")
    out = p.stdout
    for want in ("load: broken.npz: ", "param: param: no param 'W9'", "step: nan the ", "again: ", "[]"):
        if want not in out:
            fail(f"expected {want!r} in:\n{out}")
    if "in epoch" in out:
        fail(f"the step's message speaks of epochs:\n{out}")


def test_bad_emit(nnc, tmp):
    p = subprocess.run([nnc, "--emit=lib", os.path.join(ROOT, "examples", "xor.nn"), "-o",
                        os.path.join(tmp, "nofolder", "libxor.a")], cwd=tmp, capture_output=True, text=True)
    if p.returncode != 1 or "nnc: error" not in p.stderr:
        fail(f"--emit=lib into a missing folder: exit {p.returncode}\n{p.stderr}")
    left = [f for f in os.listdir(os.environ.get("TMPDIR", "/tmp")) if f.startswith("nnc-") and
            os.path.isdir(os.path.join(os.environ.get("TMPDIR", "/tmp"), f)) and
            os.path.exists(os.path.join(os.environ.get("TMPDIR", "/tmp"), f, "lib.o"))]
    if left:
        fail(f"temporary folders left behind: {left}")


if __name__ == "__main__":
    if "--build" in sys.argv:
        BUILD = sys.argv[sys.argv.index("--build") + 1]
    main("nnc-embed-", [test_example, test_spec_header, test_same_bytes, test_threads,
                        test_two_libraries, test_errors, test_bad_emit])
