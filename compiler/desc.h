/* desc.h - the runtime's model descriptor (runtime/nnc_rt.h) built from a checked model
 * and its IR: one source of truth for codegen (which emits it as an LLVM constant), the
 * interpreter-backed trainer and --check. */
#ifndef NNC_DESC_H
#define NNC_DESC_H

#include "arena.h"
#include "ast.h"
#include "ir.h"
#include "nnc_rt.h"

/* Fills everything but the train/evaluate function pointers. Strings and arrays live in
 * the arena. base_dir is the folder of source_path ("." when it has none). */
void desc_build(NncModelDesc *out, const IrProgram *p, const Model *m, int real_size,
                const char *source_path, Arena *a);

#endif
