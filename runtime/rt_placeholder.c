/* rt_placeholder.c - PLACEHOLDER so the runtime library builds until it lands. */
#include "nnc_rt.h"
int nnc_main(int argc, char **argv, const NncModelDesc *model) { (void)argc; (void)argv; (void)model; return 1; }
void nnc_init_param(const NncParamDesc *p, int index, unsigned long long seed, double *out) { (void)index; (void)seed; for (int i = 0; i < p->size; i++) out[i] = 0; }
int nnc_load_data(const NncSourceDesc *src, const char *base_dir, int in_size, int tgt_size, int real_size, NncData *out) { (void)src; (void)base_dir; (void)in_size; (void)tgt_size; (void)real_size; (void)out; return -1; }
void nnc_free_data(NncData *d) { (void)d; }
