/* interp.c - PLACEHOLDER until the interpreter lands. */
#include <stdio.h>

#include "interp.h"

int interp_main(const IrProgram *p, const Model *m, const char *source_path, int real_size,
                int argc, char **argv)
{
    (void)p; (void)m; (void)real_size; (void)argc; (void)argv;
    fprintf(stderr, "%s: error: the interpreter is not built yet\n", source_path);
    return 1;
}
