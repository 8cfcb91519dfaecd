/* cg_lib.h - a model as a library (cg_lib.c), and the tools it runs (cg_link.c). */
#ifndef NNC_CG_LIB_H
#define NNC_CG_LIB_H

#include <stdbool.h>

#include <llvm-c/TargetMachine.h>

#include "arena.h"
#include "codegen.h"

/* Runs argv[0] (found on PATH) with argv and waits for it; false after a message
 * "cannot run 'TOOL' to WHAT" or "'TOOL' failed to WHAT". */
bool cg_spawn(char **argv, const char *what);

/* The module as o->out_path (libNAME.a for CG_EMIT_LIB, libNAME.so for CG_EMIT_SHARED)
 * and its header NAME.h in the same folder, each whole or not at all. */
bool cg_write_lib(LLVMModuleRef mod, LLVMTargetMachineRef tm, const CgOptions *o,
                  const IrProgram *p, const Model *m, Arena *a);

#endif
