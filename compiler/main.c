/* main.c - the nnc command line: read the file, run the stages the flags ask for. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "autodiff.h"
#include "check.h"
#include "codegen.h"
#include "diag.h"
#include "interp.h"
#include "irprint.h"
#include "lower.h"
#include "outfile.h"
#include "parse.h"
#include "sema.h"
#include "simplify.h"

typedef enum {
    EMIT_NONE, EMIT_TOKENS, EMIT_AST, EMIT_IR, EMIT_GRAD, EMIT_LLVM, EMIT_ASM, EMIT_OBJ, EMIT_EXE
} Emit;

static const char *const emit_names[] = {
    [EMIT_TOKENS] = "tokens", [EMIT_AST] = "ast", [EMIT_IR] = "ir", [EMIT_GRAD] = "grad",
    [EMIT_LLVM] = "llvm",     [EMIT_ASM] = "asm", [EMIT_OBJ] = "obj", [EMIT_EXE] = "exe",
};

typedef struct Options {
    const char *input, *out, *model;
    Emit emit;
    bool run, check, interp;
    int opt_level, real_size;
    int run_argc;
    char **run_argv;
} Options;

static const char usage[] =
    "usage: nnc MODEL.nn [-o OUT]              compile to a training executable\n"
    "       nnc --emit=KIND MODEL.nn [-o FILE] KIND: tokens ast ir grad llvm asm obj exe\n"
    "       nnc --run MODEL.nn [-- ARGS]       compile in memory and train now\n"
    "       nnc --check MODEL.nn               check every gradient by finite differences\n"
    "       nnc --interp MODEL.nn [-- ARGS]    train with the reference interpreter (slow)\n"
    "options:\n"
    "  --model=NAME          the model to compile when the file has several\n"
    "  -O0 -O1 -O2 -O3       optimisation level (default -O2; -O0 also shows the raw\n"
    "                        chain-rule form in --emit=grad)\n"
    "  --precision=f32|f64   floating-point type of the generated code (default f32)\n"
    "  -o FILE               output file\n"
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
                return fail_usage("unknown --emit kind '%s' (tokens, ast, ir, grad, llvm, asm, obj, exe)", kind);
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
    return -1;
}

/* The whole file, NUL-terminated; NULL with a message when it cannot be read. */
static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "nnc: error: cannot open '%s': %s\n", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    for (size_t got; buf && (got = fread(buf + n, 1, cap - n, f)) > 0;) {
        n += got;
        if (n == cap)
            buf = realloc(buf, (cap *= 2) + 1);
    }
    bool bad = ferror(f) || !buf;
    fclose(f);
    if (bad) {
        fprintf(stderr, "nnc: error: cannot read '%s'\n", path);
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* Runs the text-producing stage `print` into -o FILE (atomically) or stdout. */
static int emit_text(const Options *o, void (*print)(FILE *, const void *), const void *arg)
{
    if (!o->out) {
        print(stdout, arg);
        return fflush(stdout) == 0 ? 0 : 1;
    }
    OutFile f;
    if (!outfile_open(&f, o->out))
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

/* Tokens need only the scanner; everything else a checked tree. */
static int compile(const Options *o, Diag *d, Arena *a)
{
    Stage st = {.diag = d};
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
    if (o->check)
        return check_gradients(ir, m, d, stdout);
    if (o->interp)
        return interp_main(ir, m, o->input, o->real_size, o->run_argc, o->run_argv);
    CgOptions cg = {.opt_level = o->opt_level, .real_size = o->real_size,
                    .out_path = o->out, .source_path = o->input};
    if (o->run)
        return cg_run(ir, m, &cg, d, o->run_argc, o->run_argv);
    switch (o->emit) {
    case EMIT_LLVM: cg.emit = CG_EMIT_LLVM; break;
    case EMIT_ASM: cg.emit = CG_EMIT_ASM; break;
    case EMIT_OBJ: cg.emit = CG_EMIT_OBJ; break;
    default: cg.emit = CG_EMIT_EXE; break;
    }
    return cg_emit(ir, m, &cg, d);
}

int main(int argc, char **argv)
{
    Options o = {0};
    int status = parse_args(&o, argc, argv);
    if (status >= 0)
        return status;
    size_t len;
    char *text = read_file(o.input, &len);
    if (!text)
        return 1;
    Diag d;
    diag_init(&d, o.input, text, len);
    Arena *a = arena_new();
    status = compile(&o, &d, a);
    if (d.nerrors && status == 0)
        status = 1;
    arena_free(a);
    free(text);
    return status;
}
