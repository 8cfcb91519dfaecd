/* rt_placeholder.c - PLACEHOLDER so the runtime library builds until it lands. */
#include "nnc_rt.h"
int nnc_main(int argc, char **argv, const NncModelDesc *model) { (void)argc; (void)argv; (void)model; return 1; }
