/* codegen.c - the code generator's entry points: plan, emit the LLVM module, verify and
 * optimise it, then write LLVM IR, assembly, an object or a linked executable, or run it
 * in memory (cg_jit.c). The pieces live in cg_*.c (see cg.h). */
#include "codegen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cg.h"
#include "cg_lib.h"
#include "desc.h"
#include "outfile.h"

/* The module for p, verified, and optimised for tm unless the caller does it (an
 * executable's halves: cg_split.c); NULL after printing an error. */
static LLVMModuleRef build_module(const IrProgram *p, const Model *m, const CgOptions *o,
                                  LLVMContextRef ctx, const CgTarget *t, Arena *a, bool optimise)
{
    NncModelDesc desc;
    desc_build(&desc, p, m, o->real_size, o->source_path, a);
    desc.cpu_features = t->required;
    CgPlan *plan = cg_plan(p, a);
    LLVMModuleRef mod = LLVMModuleCreateWithNameInContext(m->name, ctx);
    LLVMTargetMachineRef tm = t->tm;
    cg_target_module(mod, tm);
    Cg g;
    cg_init(&g, ctx, mod, p, plan, o->real_size, t, a);
    LLVMValueRef train, evaluate;
    cg_emit_functions(&g, &desc, &train, &evaluate);
    cg_emit_desc(&g, &desc, train, evaluate);
    cg_dispose(&g);
    if (!cg_verify(mod) || (optimise && !cg_optimise(mod, tm, o->opt_level))) {
        LLVMDisposeModule(mod);
        return NULL;
    }
    return mod;
}

/* Writes len bytes to path (whole or not at all), or to stdout when path is NULL. */
static bool write_bytes(const char *path, const char *data, size_t len)
{
    if (!path) {
        bool ok = fwrite(data, 1, len, stdout) == len;
        return fflush(stdout) == 0 && ok;
    }
    OutFile f;
    if (!outfile_open(&f, path, 0666))
        return false;
    fwrite(data, 1, len, f.f);
    return outfile_commit(&f);
}

static bool write_llvm(LLVMModuleRef mod, const char *path)
{
    char *text = LLVMPrintModuleToString(mod);
    if (!text) /* the C API's strdup of the printed module failed */
        arena_out_of_memory();
    bool ok = write_bytes(path, text, strlen(text));
    LLVMDisposeMessage(text);
    return ok;
}

static bool write_machine(LLVMModuleRef mod, LLVMTargetMachineRef tm, LLVMCodeGenFileType kind,
                          const char *path)
{
    char *err = NULL;
    LLVMMemoryBufferRef buf = NULL;
    if (LLVMTargetMachineEmitToMemoryBuffer(tm, mod, kind, &err, &buf)) {
        fprintf(stderr, "nnc: error: LLVM code generation failed: %s\n", err ? err : "?");
        LLVMDisposeMessage(err);
        return false;
    }
    bool ok = write_bytes(path, LLVMGetBufferStart(buf), LLVMGetBufferSize(buf));
    LLVMDisposeMemoryBuffer(buf);
    return ok;
}

/* A private temporary folder for the object and the linked executable, removed whatever
 * happens (outfile.c tracks it and its files for signals). */
typedef struct Scratch {
    char dir[OUTFILE_PATH_MAX], obj[OUTFILE_PATH_MAX + 16], obj2[OUTFILE_PATH_MAX + 16];
    char exe[OUTFILE_PATH_MAX + 16];
    int slots[4];
} Scratch;

static bool scratch_open(Scratch *s)
{
    const char *tmpdir = getenv("TMPDIR");
    if (!tmpdir || !*tmpdir)
        tmpdir = "/tmp";
    int n = snprintf(s->dir, sizeof s->dir, "%s/nnc-XXXXXX", tmpdir);
    if (n < 0 || (size_t)n >= sizeof s->dir || outfile_mktemp(s->dir, true, &s->slots[0]) < 0) {
        fprintf(stderr, "nnc: error: cannot create a temporary folder in '%s'\n", tmpdir);
        return false;
    }
    snprintf(s->obj, sizeof s->obj, "%s/model.o", s->dir);
    snprintf(s->obj2, sizeof s->obj2, "%s/kernels.o", s->dir);
    snprintf(s->exe, sizeof s->exe, "%s/model", s->dir);
    s->slots[1] = outfile_track(s->obj, false);
    s->slots[2] = outfile_track(s->obj2, false);
    s->slots[3] = outfile_track(s->exe, false);
    return true;
}

static void scratch_close(Scratch *s)
{
    remove(s->obj);
    remove(s->obj2);
    remove(s->exe);
    rmdir(s->dir);
    for (int i = 0; i < 4; i++)
        outfile_untrack(s->slots[i]);
}

/* The object and the linked executable in the scratch folder; then the executable copied
 * to out, so out is replaced only by a finished executable (or written through when it
 * is a device or a FIFO). */
static bool write_exe(LLVMModuleRef mod, const CgTarget *t, const CgOptions *o, Arena *a)
{
    Scratch s;
    if (!scratch_open(&s))
        return false;
    OutFile f;
    bool two;
    bool ok = cg_split_compile(mod, t, o->opt_level, s.obj, s.obj2, &two, a) &&
              cg_link(s.obj, two ? s.obj2 : NULL, s.exe) && outfile_open(&f, o->out_path, 0777);
    if (ok && !outfile_copy(&f, s.exe)) {
        outfile_abort(&f);
        ok = false;
    } else if (ok) {
        ok = outfile_commit(&f);
    }
    scratch_close(&s);
    return ok;
}

static bool write_output(LLVMModuleRef mod, const CgTarget *t, const CgOptions *o, Arena *a)
{
    LLVMTargetMachineRef tm = t->tm;
    switch (o->emit) {
    case CG_EMIT_LLVM: return write_llvm(mod, o->out_path);
    case CG_EMIT_ASM: return write_machine(mod, tm, LLVMAssemblyFile, o->out_path);
    case CG_EMIT_OBJ: return write_machine(mod, tm, LLVMObjectFile, o->out_path);
    case CG_EMIT_EXE: return write_exe(mod, t, o, a);
    default: return false; /* the libraries: cg_lib.c */
    }
    return false;
}

int cg_emit(const IrProgram *p, const Model *m, const CgOptions *o, Diag *d)
{
    (void)d; /* the IR was checked before; what fails here has no source location */
    Arena *a = arena_new();
    CgTarget t;
    if (!cg_target_init(&t, o->cpu, o->cpu_features, o->opt_level, a)) {
        arena_free(a);
        return 1;
    }
    LLVMContextRef ctx = LLVMContextCreate();
    LLVMModuleRef mod = build_module(p, m, o, ctx, &t, a, o->emit != CG_EMIT_EXE);
    bool lib = o->emit == CG_EMIT_LIB || o->emit == CG_EMIT_SHARED; /* cg_lib.c */
    bool ok = mod && (lib ? cg_write_lib(mod, t.tm, o, p, m, a) : write_output(mod, &t, o, a));
    if (mod)
        LLVMDisposeModule(mod);
    LLVMContextDispose(ctx);
    LLVMDisposeTargetMachine(t.tm);
    arena_free(a);
    return ok ? 0 : 1;
}

int cg_run(const IrProgram *p, const Model *m, const CgOptions *o, Diag *d, int argc, char **argv)
{
    (void)d;
    Arena *a = arena_new();
    CgTarget t;
    if (!cg_target_init(&t, o->cpu, o->cpu_features, o->opt_level, a)) {
        arena_free(a);
        return 1;
    }
    LLVMOrcThreadSafeContextRef tsc = LLVMOrcCreateNewThreadSafeContext();
    LLVMModuleRef mod = build_module(p, m, o, LLVMOrcThreadSafeContextGetContext(tsc), &t, a, true);
    int status = 1;
    if (mod) /* nnc_main checks the CPU's features before the module's code runs */
        status = cg_jit_run(tsc, mod, t.tm, m->name, argc, argv); /* takes mod and tm */
    else
        LLVMDisposeTargetMachine(t.tm);
    LLVMOrcDisposeThreadSafeContext(tsc);
    arena_free(a);
    return status;
}
