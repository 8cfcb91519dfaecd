/* codegen.h - the IR to native code through the LLVM-C API. */
#ifndef NNC_CODEGEN_H
#define NNC_CODEGEN_H

#include "ast.h"
#include "diag.h"
#include "ir.h"

typedef enum { CG_EMIT_LLVM, CG_EMIT_ASM, CG_EMIT_OBJ, CG_EMIT_EXE, CG_EMIT_LIB, CG_EMIT_SHARED } CgEmit;

typedef struct CgOptions {
    int opt_level;        /* 0..3 */
    int real_size;        /* 4: f32, 8: f64 */
    CgEmit emit;
    const char *out_path; /* NULL: text kinds to stdout; obj and exe need one */
    /* the .nn file, for base_dir: absolute for an executable that runs anywhere */
    const char *source_path;
    const char *cpu;         /* --cpu: NULL or "native" for the host's */
    const char *cpu_features; /* --cpu-features: +a,-b, or NULL */
} CgOptions;

/* Writes the requested output whole or not at all. Returns the exit status. */
int cg_emit(const IrProgram *p, const Model *m, const CgOptions *o, Diag *d);
/* Compiles in memory with LLVM's JIT and runs the training program with argv. */
int cg_run(const IrProgram *p, const Model *m, const CgOptions *o, Diag *d, int argc, char **argv);

#endif
