/* cg_lib.c - nnc --emit=lib and --emit=shared (spec section 11): the model as a library
 * with a C header, made in nnc's private temporary folder by the system's tools:
 *
 *   NAME.h    the API: NAME_new, NAME_free, NAME_load, NAME_save, NAME_error, NAME_predict,
 *             NAME_train_step, NAME_param (float or double as the precision)
 *   NAME.o    the model's generated code, as for an executable
 *   api.o     the API's functions (api.c, written here, compiled by cc -fPIC): each calls
 *             the runtime's nnc_lib_* with the model's descriptor (runtime/rt_lib.c)
 *   lib.o     cc -r of both with libnncrt.a, searched as by a link: one object holding the
 *             runtime members the model needs; then objcopy -G NAME_...: every symbol but
 *             the API's made local, so that libraries of two models, each with its own
 *             copy of the runtime, link into one program without a clash
 *   libNAME.a  (ar rcs) or libNAME.so (cc -shared, with -lz -lm -pthread)
 *
 * The library and the header are copied into place whole; the folder goes whatever happens. */
#include "cg_lib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cg.h"
#include "cg_runtime.h"
#include "desc.h"
#include "outfile.h"

enum { F_OBJ, F_API_C, F_API_O, F_ALL, F_HEADER, F_LIB, NFILES, NAPI = 8 };

static const char *const api_names[NAPI] = {"new",     "free",       "load",  "save",
                                            "error",   "predict",    "train_step", "param"};

typedef struct Lib {
    const NncModelDesc *d;
    const char *real; /* "float" or "double" */
    bool shared;
    char dir[OUTFILE_PATH_MAX];
    char file[NFILES][OUTFILE_PATH_MAX + 64];
    char api[NAPI][300]; /* NAME_new, ...: the symbols left global */
    int slots[NFILES + 1];
} Lib;

static bool scratch_open(Lib *l)
{
    static const char *const names[NFILES] = {"model.o", "api.c", "api.o", "lib.o", "header.h", "lib.out"};
    const char *tmpdir = getenv("TMPDIR");
    if (!tmpdir || !*tmpdir)
        tmpdir = "/tmp";
    int n = snprintf(l->dir, sizeof l->dir, "%s/nnc-XXXXXX", tmpdir);
    if (n < 0 || (size_t)n >= sizeof l->dir || outfile_mktemp(l->dir, true, &l->slots[NFILES]) < 0) {
        fprintf(stderr, "nnc: error: cannot create a temporary folder in '%s'\n", tmpdir);
        return false;
    }
    for (int i = 0; i < NFILES; i++) {
        snprintf(l->file[i], sizeof l->file[i], "%s/%s", l->dir, names[i]);
        l->slots[i] = outfile_track(l->file[i], false);
    }
    return true;
}

static void scratch_close(Lib *l)
{
    for (int i = 0; i < NFILES; i++) {
        remove(l->file[i]);
        outfile_untrack(l->slots[i]);
    }
    rmdir(l->dir);
    outfile_untrack(l->slots[NFILES]);
}

/* ---- the header and the API's source ---- */

static void header_params(FILE *f, const NncModelDesc *d)
{
    fprintf(f, " * Params (NAME_param's names):");
    for (int i = 0; i < d->nparams; i++) {
        const NncParamDesc *p = &d->params[i];
        fprintf(f, "%s %s [", i % 4 ? "," : "\n *  ", p->name);
        for (int k = 0; k < p->rank; k++)
            fprintf(f, "%s%d", k ? ", " : "", p->dims[k]);
        fprintf(f, "]");
    }
    fprintf(f, "%s\n", d->nparams ? "" : " none");
}

static void write_header(FILE *f, const Lib *l)
{
    const NncModelDesc *d = l->d;
    const char *n = d->name, *r = l->real;
    fprintf(f, "/* %s.h - model %s as a library (%s), written by nnc %s --emit=%s.\n"
            " * Link: cc app.c lib%s.%s -lm -lz -lpthread\n"
            " * Models are independent objects: two in two threads never interfere (one model is\n"
            " * used by one thread at a time). Arrays are row-major, one sample after another.\n",
            n, n, r, NNC_VERSION, l->shared ? "shared" : "lib", n, l->shared ? "so" : "a");
    header_params(f, d);
    fprintf(f, " */\n#ifndef NNC_MODEL_%s_H\n#define NNC_MODEL_%s_H\n\n"
            "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n", n, n);
    fprintf(f, "typedef struct %s_model %s_model;\n"
            "enum { %s_INPUT_SIZE = %d, %s_OUTPUT_SIZE = %d, %s_TARGET_SIZE = %d };\n\n",
            n, n, n, d->in_size, n, d->out_size, n, d->tgt_size);
    fprintf(f, "/* params from their initialisers (the train block's seed gives the executable's) */\n"
            "%s_model *%s_new(unsigned long long seed);\nvoid %s_free(%s_model *m);\n", n, n, n, n);
    fprintf(f, "/* .npz files as the executable's --load and --save: 0 ok, else -1 and %s_error() */\n"
            "int %s_load(%s_model *m, const char *npz);\nint %s_save(const %s_model *m, const char *npz);\n"
            "/* the calling thread's last message */\nconst char *%s_error(void);\n", n, n, n, n, n, n);
    fprintf(f, "/* the forward pass: y[n * %s_OUTPUT_SIZE] from x[n * %s_INPUT_SIZE] */\n"
            "void %s_predict(%s_model *m, int n, const %s *x, %s *y);\n", n, n, n, n, r, r);
    fprintf(f, "/* one optimizer step of the train block's optimizer on n samples (t: n * %s_TARGET_SIZE):\n"
            " * the mean loss; NaN and %s_error() when the step was not applied */\n"
            "%s %s_train_step(%s_model *m, int n, const %s *x, const %s *t);\n", n, n, r, n, n, r, r);
    fprintf(f, "/* a param's live storage (writes change the model) and *count its values; NULL if unknown */\n"
            "%s *%s_param(%s_model *m, const char *name, int *count);\n", r, n, n);
    fprintf(f, "\n#ifdef __cplusplus\n}\n#endif\n\n#endif\n");
}

static void write_api(FILE *f, const Lib *l)
{
    const char *n = l->d->name, *r = l->real;
    fprintf(f, "#include \"header.h\"\n#include \"nnc_rt.h\"\n\nextern const NncModelDesc nnc_model;\n\n");
    fprintf(f, "%s_model *%s_new(unsigned long long seed) { return (%s_model *)nnc_lib_new(&nnc_model, seed); }\n"
            "void %s_free(%s_model *m) { nnc_lib_free((NncRun *)m); }\n", n, n, n, n, n);
    fprintf(f, "int %s_load(%s_model *m, const char *npz) { return nnc_lib_load((NncRun *)m, npz); }\n"
            "int %s_save(const %s_model *m, const char *npz) { return nnc_lib_save((const NncRun *)m, npz); }\n"
            "const char *%s_error(void) { return nnc_lib_error(); }\n", n, n, n, n, n);
    fprintf(f, "void %s_predict(%s_model *m, int n, const %s *x, %s *y) { nnc_lib_predict((NncRun *)m, n, x, y); }\n",
            n, n, r, r);
    fprintf(f, "%s %s_train_step(%s_model *m, int n, const %s *x, const %s *t)\n"
            "{ return (%s)nnc_lib_train_step((NncRun *)m, n, x, t); }\n", r, n, n, r, r, r);
    fprintf(f, "%s *%s_param(%s_model *m, const char *name, int *count)\n"
            "{ return (%s *)nnc_lib_param((NncRun *)m, name, count); }\n", r, n, n, r);
}

static bool write_text(const char *path, void (*write)(FILE *, const Lib *), const Lib *l)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "nnc: error: cannot write '%s'\n", path);
        return false;
    }
    write(f, l);
    bool ok = !ferror(f);
    return fclose(f) == 0 && ok;
}

/* ---- the tools ---- */

/* "-I" and the folder of the runtime's header, into buf. */
static bool runtime_include(char *buf, size_t cap)
{
    const char *h = cg_runtime_file(CG_RT_FILE_HEADER);
    const char *slash = h ? strrchr(h, '/') : NULL;
    if (!h)
        return false;
    snprintf(buf, cap, "-I%.*s", slash ? (int)(slash - h) : 1, slash ? h : ".");
    return true;
}

static bool compile_api(Lib *l)
{
    char inc[OUTFILE_PATH_MAX + 8], here[OUTFILE_PATH_MAX + 8];
    if (!runtime_include(inc, sizeof inc))
        return false;
    snprintf(here, sizeof here, "-I%s", l->dir);
    char *argv[] = {"cc", "-c", "-O2", "-fPIC", here, inc, l->file[F_API_C], "-o", l->file[F_API_O], NULL};
    return cg_spawn(argv, "compile the library's API");
}

/* One object: the model, the API and the runtime members they need; then only the API global. */
static bool combine(Lib *l)
{
    const char *rt = cg_runtime_file(CG_RT_FILE_LIB);
    if (!rt)
        return false;
    char *ld[] = {"cc", "-r", "-nostdlib", "-o", l->file[F_ALL], l->file[F_OBJ], l->file[F_API_O],
                  (char *)rt, NULL};
    if (!cg_spawn(ld, "combine the library's objects"))
        return false;
    char *argv[2 * NAPI + 3];
    int k = 0;
    argv[k++] = "objcopy";
    for (int i = 0; i < NAPI; i++) {
        argv[k++] = "-G";
        argv[k++] = l->api[i];
    }
    argv[k++] = l->file[F_ALL];
    argv[k] = NULL;
    return cg_spawn(argv, "make the runtime's symbols local");
}

static bool archive(Lib *l)
{
    if (l->shared) {
        char extra[] = NNC_LINK_EXTRA;
        char *argv[24] = {"cc", "-shared", "-o", l->file[F_LIB], l->file[F_ALL]};
        int k = 5;
        for (char *tok = strtok(extra, " "); tok && k < 18; tok = strtok(NULL, " "))
            argv[k++] = tok;
        argv[k++] = "-lz";
        argv[k++] = "-lm";
        argv[k++] = "-pthread";
        argv[k] = NULL;
        return cg_spawn(argv, "link the shared library");
    }
    char *argv[] = {"ar", "rcs", l->file[F_LIB], l->file[F_ALL], NULL};
    return cg_spawn(argv, "make the static library");
}

/* ---- into place ---- */

static bool install(const char *src, const char *dst)
{
    OutFile f;
    if (!outfile_open(&f, dst, 0666))
        return false;
    if (!outfile_copy(&f, src)) {
        outfile_abort(&f);
        return false;
    }
    return outfile_commit(&f);
}

/* NAME.h in the folder of the library. */
static const char *header_path(const char *lib, const char *name, Arena *a)
{
    const char *slash = strrchr(lib, '/');
    if (!slash)
        return arena_printf(a, "%s.h", name);
    return arena_printf(a, "%.*s/%s.h", (int)(slash - lib), lib, name);
}

static bool emit_object(LLVMModuleRef mod, LLVMTargetMachineRef tm, const char *path)
{
    char *err = NULL;
    if (!LLVMTargetMachineEmitToFile(tm, mod, (char *)path, LLVMObjectFile, &err))
        return true;
    fprintf(stderr, "nnc: error: LLVM code generation failed: %s\n", err ? err : "?");
    LLVMDisposeMessage(err);
    return false;
}

bool cg_write_lib(LLVMModuleRef mod, LLVMTargetMachineRef tm, const CgOptions *o,
                  const IrProgram *p, const Model *m, Arena *a)
{
    Lib l = {.shared = o->emit == CG_EMIT_SHARED, .real = o->real_size == 8 ? "double" : "float"};
    NncModelDesc d;
    desc_build(&d, p, m, o->real_size, o->source_path, a);
    l.d = &d;
    for (int i = 0; i < NAPI; i++)
        snprintf(l.api[i], sizeof l.api[i], "%s_%s", d.name, api_names[i]);
    if (!scratch_open(&l))
        return false;
    bool ok = emit_object(mod, tm, l.file[F_OBJ]) && write_text(l.file[F_HEADER], write_header, &l) &&
              write_text(l.file[F_API_C], write_api, &l) && compile_api(&l) && combine(&l) &&
              archive(&l) && install(l.file[F_LIB], o->out_path) &&
              install(l.file[F_HEADER], header_path(o->out_path, d.name, a));
    scratch_close(&l);
    return ok;
}
