/* interp.h - the reference interpreter: plain, obviously correct f64 evaluation of the IR,
 * forward and backward, one sample at a time. */
#ifndef NNC_INTERP_H
#define NNC_INTERP_H

#include "ast.h"
#include "ir.h"

/* `nnc --interp MODEL.nn [-- ARGS]`: the whole training program of the executable (same
 * runtime, flags and output), with the interpreter doing the maths. Slow; it is the
 * reference the compiled code is tested against. Returns the exit status. */
int interp_main(const IrProgram *p, const Model *m, const char *source_path, int real_size,
                int argc, char **argv);

#endif
