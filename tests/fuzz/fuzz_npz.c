/* fuzz_npz.c - libFuzzer target: any bytes as the .npz that --load reads for a small model
 * (W[2, 3], h.b[3] and a scalar s, f32): the zip's end records, zip64 fields, central
 * directory, local headers, inflate, CRC-32s, .npy headers and shapes. Seeds: numpy's savez
 * and savez_compressed files and nnc's own layout (tests/fuzz/rt_seeds.py). */
#include "fuzz_rt.h"
#include "rt_internal.h"

static const NncParamDesc params[3] = {
    {"W", 2, {2, 3}, 6, NNC_INIT_ZEROS, 0, 0},
    {"h.b", 1, {3}, 3, NNC_INIT_ZEROS, 0, 0},
    {"s", 0, {0}, 1, NNC_INIT_ZEROS, 0, 0},
};

static const NncModelDesc model = {.name = "fuzz", .real_size = 4, .nparams = 3, .params = params};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FuzzFile file;
    float w[6], b[3], s[1];
    void *const bufs[3] = {w, b, s};
    fuzz_file(&file, data, size);
    rt_npz_load(file.path, &model, bufs);
    return 0;
}
