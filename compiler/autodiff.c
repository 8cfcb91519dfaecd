/* autodiff.c - PLACEHOLDER until the module lands: reports that the stage is missing. */
#include "autodiff.h"
bool ad_differentiate(IrProgram *p, Diag *d) { (void)p; diag_error(d, (Loc){0, 0}, "autodiff is not built yet"); return false; }
