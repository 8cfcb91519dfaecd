/* simplify.h - constant folding, algebraic identities, CSE and DCE over the whole IR. */
#ifndef NNC_SIMPLIFY_H
#define NNC_SIMPLIFY_H

#include "ir.h"

/* Returns a new, simplified program (same arena); p is left as it was. */
IrProgram *simp_program(const IrProgram *p);

#endif
