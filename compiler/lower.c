/* lower.c - PLACEHOLDER until the module lands: reports that the stage is missing. */
#include "lower.h"
IrProgram *lower_model(const Model *m, Arena *a, Diag *d) { (void)m; (void)a; diag_error(d, (Loc){0, 0}, "lowering is not built yet"); return NULL; }
