/* codegen.c - PLACEHOLDER until the module lands: reports that the stage is missing. */
#include "codegen.h"
int cg_emit(const IrProgram *p, const Model *m, const CgOptions *o, Diag *d) { (void)p; (void)m; (void)o; diag_error(d, (Loc){0, 0}, "code generation is not built yet"); return 1; }
int cg_run(const IrProgram *p, const Model *m, const CgOptions *o, Diag *d, int argc, char **argv) { (void)argc; (void)argv; return cg_emit(p, m, o, d); }
