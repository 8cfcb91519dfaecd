/* main.c - the nnc command line: read the file, run the stages the flags ask for. */
#define _DEFAULT_SOURCE /* realpath */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "arena.h"
#include "autodiff.h"
#include "check.h"
#include "codegen.h"
#include "diag.h"
#include "dot.h"
#include "interp.h"
#include "irprint.h"
#include "lower.h"
#include "outfile.h"
#include "parse.h"
#include "sema.h"
#include "simplify.h"

typedef enum {
    EMIT_NONE, EMIT_TOKENS, EMIT_AST, EMIT_IR, EMIT_GRAD, EMIT_LLVM, EMIT_ASM, EMIT_OBJ, EMIT_EXE,
    EMIT_DOT, EMIT_LIB, EMIT_SHARED
} Emit;

static const char *const emit_names[] = {
    [EMIT_TOKENS] = "tokens", [EMIT_AST] = "ast", [EMIT_IR] = "ir", [EMIT_GRAD] = "grad",
    [EMIT_LLVM] = "llvm",     [EMIT_ASM] = "asm", [EMIT_OBJ] = "obj", [EMIT_EXE] = "exe",
    [EMIT_DOT] = "dot",       [EMIT_LIB] = "lib",       [EMIT_SHARED] = "shared",
};

typedef struct Options {
    const char *input, *out, *model;
    const char *cpu, *cpu_features; /* --cpu, --cpu-features */
    Emit emit;
    bool run, check, interp;
    bool to_stdout; /* -o -: the output to standard output (text kinds and objects) */
    int opt_level, real_size;
    int run_argc;
    char **run_argv;
} Options;

static const char usage[] =
    "usage: nnc MODEL.nn [-o OUT]              compile to a training executable\n"
    "       nnc --emit=KIND MODEL.nn [-o FILE] KIND: tokens ast ir grad dot llvm asm obj exe\n"
    "                                          lib (libNAME.a and NAME.h), shared (libNAME.so)\n"
    "       nnc --run MODEL.nn [-- ARGS]       compile in memory and train now\n"
    "       nnc --check MODEL.nn               check every gradient by finite differences\n"
    "       nnc --interp MODEL.nn [-- ARGS]    train with the reference interpreter (slow)\n"
    "options:\n"
    "  --model=NAME          the model to compile when the file has several\n"
    "  -O0 -O1 -O2 -O3       optimisation level (default -O2; -O0 also shows the raw\n"
    "                        chain-rule form in --emit=grad)\n"
    "  --precision=f32|f64   floating-point type of the generated code (default f32)\n"
    "  --cpu=NAME            the CPU to generate code for: native (default), x86-64,\n"
    "                        x86-64-v2, x86-64-v3, x86-64-v4, haswell, skylake-avx512,\n"
    "                        znver3, znver4, ...\n"
    "  --cpu-features=+a,-b  add or remove CPU features (avx2, fma, avx512f, ...)\n"
    "  -o FILE               output file (- : standard output, for text kinds and obj)\n"
    "  --help, --version\n";

static int fail_usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "nnc: error: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(nnc --help shows the usage)\n");
    return 1;
}

static bool parse_emit(Options *o, const char *kind)
{
    for (size_t i = 1; i < sizeof emit_names / sizeof *emit_names; i++)
        if (strcmp(kind, emit_names[i]) == 0) {
            o->emit = (Emit)i;
            return true;
        }
    return false;
}

/* Returns -1 to go on, else the exit status. */
static int parse_args(Options *o, int argc, char **argv)
{
    o->opt_level = 2;
    o->real_size = 4;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        } else if (strcmp(a, "--version") == 0) {
            printf("nnc %s\n", NNC_VERSION);
            return 0;
        } else if (strcmp(a, "--") == 0) {
            o->run_argc = argc - i - 1;
            o->run_argv = argv + i + 1;
            break;
        } else if (strcmp(a, "-o") == 0) {
            if (++i == argc)
                return fail_usage("%s needs a file name", a);
            o->out = argv[i];
        } else if (strncmp(a, "--emit=", 7) == 0 || strcmp(a, "--emit") == 0) {
            const char *kind = a[6] == '=' ? a + 7 : (++i < argc ? argv[i] : "");
            if (!parse_emit(o, kind))
                return fail_usage("unknown --emit kind '%s' (tokens, ast, ir, grad, dot, llvm, asm, obj, "
                                  "exe, lib, shared)", kind);
        } else if (strncmp(a, "--model=", 8) == 0) {
            o->model = a + 8;
        } else if (strcmp(a, "--run") == 0) {
            o->run = true;
        } else if (strcmp(a, "--interp") == 0) {
            o->interp = true;
        } else if (strcmp(a, "--check") == 0) {
            o->check = true;
        } else if (a[0] == '-' && a[1] == 'O' && a[2] >= '0' && a[2] <= '3' && !a[3]) {
            o->opt_level = a[2] - '0';
        } else if (strncmp(a, "--cpu=", 6) == 0) {
            o->cpu = a + 6;
        } else if (strncmp(a, "--cpu-features=", 15) == 0) {
            o->cpu_features = a + 15;
        } else if (strcmp(a, "--precision=f32") == 0) {
            o->real_size = 4;
        } else if (strcmp(a, "--precision=f64") == 0) {
            o->real_size = 8;
        } else if (a[0] == '-' && a[1]) {
            return fail_usage("unknown option '%s'", a);
        } else if (o->input) {
            return fail_usage("more than one input file ('%s')", a);
        } else {
            o->input = a;
        }
    }
    if (!o->input)
        return fail_usage("%s", "no input file");
    if (o->run + o->check + o->interp + (o->emit != EMIT_NONE) > 1)
        return fail_usage("%s", "--run, --interp, --check and --emit exclude each other");
    if (o->out && strcmp(o->out, "-") == 0) { /* as other Unix tools: standard output */
        if (o->emit == EMIT_NONE || o->emit == EMIT_EXE || o->emit == EMIT_LIB || o->emit == EMIT_SHARED)
            return fail_usage("-o -: %s is a file to name, not standard output",
                              o->emit == EMIT_LIB || o->emit == EMIT_SHARED ? "a library" : "an executable");
        o->out = NULL;
        o->to_stdout = true;
    }
    return -1;
}

/* The source as read, and which file it was (for the output-is-input check). */
typedef struct Input {
    const char *path;
    char *text;
    size_t len;
    bool regular;
    dev_t dev;
    ino_t ino;
} Input;

/* Sources are small; a limit keeps `nnc /dev/zero` from reading until memory runs out. */
enum { MAX_SOURCE = 64 << 20 };

static bool too_big(const char *path)
{
    fprintf(stderr, "nnc: error: '%s' is larger than %d MB, the most nnc reads\n", path,
            MAX_SOURCE >> 20);
    return false;
}

/* Reads up to MAX_SOURCE + 1 bytes of f into in->text (NUL-terminated). */
static bool read_all(FILE *f, Input *in)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    for (size_t got; buf && n <= MAX_SOURCE && (got = fread(buf + n, 1, cap - n, f)) > 0;) {
        n += got;
        if (n == cap && cap <= MAX_SOURCE) {
            cap = 2 * cap > (size_t)MAX_SOURCE + 1 ? (size_t)MAX_SOURCE + 1 : 2 * cap;
            char *bigger = realloc(buf, cap + 1);
            if (!bigger)
                free(buf);
            buf = bigger;
        }
    }
    if (!buf)
        arena_out_of_memory();
    buf[n] = '\0';
    in->text = buf;
    in->len = n;
    return !ferror(f);
}

/* The whole file; false with a message when it cannot be read or is too big. */
static bool read_input(const char *path, Input *in)
{
    *in = (Input){.path = path};
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "nnc: error: cannot open '%s': %s\n", path, strerror(errno));
        return false;
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0) {
        in->regular = S_ISREG(st.st_mode);
        in->dev = st.st_dev;
        in->ino = st.st_ino;
    }
    if (in->regular && st.st_size > MAX_SOURCE) {
        fclose(f);
        return too_big(path);
    }
    bool ok = read_all(f, in);
    int err = errno;
    fclose(f);
    if (!ok)
        fprintf(stderr, "nnc: error: cannot read '%s': %s\n", path, strerror(err));
    else if (in->len > MAX_SOURCE)
        ok = too_big(path);
    if (!ok) {
        free(in->text);
        in->text = NULL;
    }
    return ok;
}

/* ---- where the output goes ---- */

/* "'-o X'" or "'X' (the default output, the model's name)", for messages. */
static void say_output(const Options *o, const char *path)
{
    if (o->out)
        fprintf(stderr, "nnc: error: '-o %s': ", path);
    else
        fprintf(stderr, "nnc: error: '%s' (the default output, from the model's name): ", path);
}

/* Before any work: the output may be neither a folder nor the source itself (compared as
 * files when the output exists, as names when it does not). */
static bool output_ok(const Options *o, const Input *in, const char *path)
{
    struct stat st;
    bool exists = stat(path, &st) == 0;
    const char *hint = o->out ? "" : "; choose another with -o";
    if (exists && S_ISDIR(st.st_mode)) {
        say_output(o, path);
        fprintf(stderr, "is a directory%s\n", hint);
        return false;
    }
    bool same = exists ? in->regular && st.st_dev == in->dev && st.st_ino == in->ino
                       : strcmp(path, in->path) == 0;
    if (same) {
        say_output(o, path);
        fprintf(stderr, "is the input file '%s'%s\n", in->path, hint);
        return false;
    }
    return true;
}

/* Default output names (spec 8): MODEL.o for obj, ./MODEL for exe; text kinds: stdout;
 * --run, --check and --interp write none. */
static const char *output_path(const Options *o, const Model *m, Arena *a)
{
    if (o->out)
        return o->out;
    if (o->run || o->check || o->interp || o->to_stdout)
        return NULL;
    if (o->emit == EMIT_OBJ)
        return arena_printf(a, "%s.o", m->name);
    if (o->emit == EMIT_EXE || o->emit == EMIT_NONE)
        return m->name;
    if (o->emit == EMIT_LIB || o->emit == EMIT_SHARED) /* and NAME.h beside it (cg_lib.c) */
        return arena_printf(a, "lib%s.%s", m->name, o->emit == EMIT_LIB ? "a" : "so");
    return NULL;
}

/* The input's path with its folder made absolute, for the executable's base_dir: relative
 * data paths are relative to the .nn file's folder wherever the executable runs (spec 5). */
static const char *absolute_input(const char *path, Arena *a)
{
    const char *slash = strrchr(path, '/');
    const char *dir = !slash ? "." : slash == path ? "/" : arena_strndup(a, path, (size_t)(slash - path));
    char *real = realpath(dir, NULL);
    if (!real)
        return path;
    const char *abs = arena_printf(a, "%s/%s", strcmp(real, "/") ? real : "", slash ? slash + 1 : path);
    free(real);
    return abs;
}

/* Runs the text-producing stage `print` into -o FILE (atomically) or stdout. */
static int emit_text(const Options *o, void (*print)(FILE *, const void *), const void *arg)
{
    if (!o->out) {
        print(stdout, arg);
        return fflush(stdout) == 0 ? 0 : 1;
    }
    OutFile f;
    if (!outfile_open(&f, o->out, 0666))
        return 1;
    print(f.f, arg);
    return outfile_commit(&f) ? 0 : 1;
}

typedef struct Stage {
    Diag *diag;
    const IrProgram *ir;
    const Program *prog;
} Stage;

static void print_tokens(FILE *out, const void *arg)
{
    parse_dump_tokens(((const Stage *)arg)->diag, out);
}

static void print_ast(FILE *out, const void *arg)
{
    sema_print_ast(out, ((const Stage *)arg)->prog);
}

static void print_ir(FILE *out, const void *arg)
{
    const Stage *s = arg;
    ir_print(out, s->ir, s->diag, false);
}

static void print_grad(FILE *out, const void *arg)
{
    const Stage *s = arg;
    ir_print(out, s->ir, s->diag, true);
}

static void print_dot(FILE *out, const void *arg)
{
    const Stage *s = arg;
    dot_print(out, s->ir, s->diag);
}

static CgEmit cg_kind(Emit e)
{
    switch (e) {
    case EMIT_LLVM: return CG_EMIT_LLVM;
    case EMIT_ASM: return CG_EMIT_ASM;
    case EMIT_OBJ: return CG_EMIT_OBJ;
    case EMIT_LIB: return CG_EMIT_LIB;
    case EMIT_SHARED: return CG_EMIT_SHARED;
    default: return CG_EMIT_EXE;
    }
}

/* The model through LLVM: run in memory, or written to out. */
static int generate(const Options *o, const Input *in, IrProgram *ir, Model *m, Diag *d, Arena *a)
{
    CgOptions cg = {.opt_level = o->opt_level, .real_size = o->real_size, .source_path = o->input,
                    .cpu = o->cpu, .cpu_features = o->cpu_features};
    if (o->run)
        return cg_run(ir, m, &cg, d, o->run_argc, o->run_argv);
    cg.emit = cg_kind(o->emit);
    cg.out_path = output_path(o, m, a);
    cg.source_path = absolute_input(in->path, a);
    return cg_emit(ir, m, &cg, d);
}

/* Tokens need only the scanner; everything else a checked tree. */
static int compile(const Options *o, const Input *in, Diag *d, Arena *a)
{
    Stage st = {.diag = d};
    if (o->out && !output_ok(o, in, o->out))
        return 1;
    if (o->emit == EMIT_TOKENS) {
        int status = emit_text(o, print_tokens, &st);
        return d->nerrors ? 1 : status;
    }
    Program *prog = parse_program(a, d);
    if (!prog || d->nerrors)
        return 1;
    if (!sema_check(prog, a, d))
        return 1;
    st.prog = prog;
    if (o->emit == EMIT_AST)
        return emit_text(o, print_ast, &st);
    Model *m = sema_pick_model(prog, o->model, d);
    if (!m)
        return 1;
    const char *out = output_path(o, m, a);
    if (!o->out && out && !output_ok(o, in, out))
        return 1;
    /* --check computes in f64 whatever --precision says */
    if (!sema_check_inits(m, o->check ? 8 : o->real_size, d))
        return 1;
    IrProgram *ir = lower_model(m, a, d);
    if (!ir)
        return 1;
    if (o->emit != EMIT_IR && !ad_differentiate(ir, d))
        return 1;
    /* -O0 keeps the raw chain-rule form so a reader can compare it with the simplified one. */
    if (o->opt_level > 0)
        ir = simp_program(ir);
    st.ir = ir;
    if (o->emit == EMIT_IR)
        return emit_text(o, print_ir, &st);
    if (o->emit == EMIT_GRAD)
        return emit_text(o, print_grad, &st);
    if (o->emit == EMIT_DOT)
        return emit_text(o, print_dot, &st);
    if (o->check)
        return check_gradients(ir, m, d, stdout);
    if (o->interp)
        return interp_main(ir, m, o->input, o->real_size, o->run_argc, o->run_argv);
    return generate(o, in, ir, m, d, a);
}

/* ---- memory running out ---- */

/* LLVM allocates with C++ new: without a handler, memory running out there throws a
 * std::bad_alloc nothing catches, and nnc aborts (SIGABRT). std::set_new_handler and
 * llvm::install_bad_alloc_error_handler take plain function pointers, so C calls them by
 * their Itanium C++ ABI names; weak, so a C++ runtime without them changes nothing. */
typedef void (*NewHandler)(void);
extern NewHandler _ZSt15set_new_handlerPFvvE(NewHandler) __attribute__((weak));
extern void _ZN4llvm31install_bad_alloc_error_handlerEPFvPvPKcbES0_(
    void (*)(void *, const char *, bool), void *) __attribute__((weak));

static void on_new_failure(void)
{
    arena_out_of_memory();
}

static void on_llvm_bad_alloc(void *data, const char *reason, bool crash_diag)
{
    (void)data, (void)reason, (void)crash_diag;
    arena_out_of_memory();
}

static void handle_out_of_memory(void)
{
    if (_ZSt15set_new_handlerPFvvE)
        _ZSt15set_new_handlerPFvvE(on_new_failure);
    if (_ZN4llvm31install_bad_alloc_error_handlerEPFvPvPKcbES0_)
        _ZN4llvm31install_bad_alloc_error_handlerEPFvPvPKcbES0_(on_llvm_bad_alloc, NULL);
}

/* ---- a deep stack ---- */

/* Long programs make deep recursion in LLVM's analyses: ScalarEvolution, asked about a
 * function of a thousand loops one after the other, recursed through them all and
 * overflowed the main thread's 8 MB (a 1000-statement chain at -O2, before the checked
 * step's join blocks; 64 MB was enough). So the compilation runs on a thread whose stack
 * is reserved larger; only the pages it touches are committed. (Not much larger: the
 * sanitizers' shadow of a 512 MB stack cost every nnc run 80 ms.) Where the thread cannot
 * be made (a tight ulimit -v), the main thread does the work as before. */
enum { COMPILE_STACK = 64 << 20 };

typedef struct Job {
    const Options *o;
    const Input *in;
    Diag *d;
    Arena *a;
    int status;
} Job;

static void *run_job(void *p)
{
    Job *j = p;
    j->status = compile(j->o, j->in, j->d, j->a);
    return NULL;
}

static int compile_deep(const Options *o, const Input *in, Diag *d, Arena *a)
{
    Job j = {o, in, d, a, 1};
    pthread_attr_t attr;
    pthread_t t;
    bool threaded = pthread_attr_init(&attr) == 0;
    if (threaded) {
        threaded = pthread_attr_setstacksize(&attr, COMPILE_STACK) == 0 &&
                   pthread_create(&t, &attr, run_job, &j) == 0;
        pthread_attr_destroy(&attr);
    }
    if (threaded)
        pthread_join(t, NULL);
    else
        run_job(&j);
    return j.status;
}

int main(int argc, char **argv)
{
    Options o = {0};
    int status = parse_args(&o, argc, argv);
    if (status >= 0)
        return status;
    handle_out_of_memory();
    Input in;
    if (!read_input(o.input, &in))
        return 1;
    Diag d;
    diag_init(&d, o.input, in.text, in.len);
    Arena *a = arena_new();
    status = compile_deep(&o, &in, &d, a);
    if (d.nerrors && status == 0)
        status = 1;
    arena_free(a);
    free(in.text);
    return status;
}
