/* fuzz_csv.c - libFuzzer target: the csv reader. The first byte picks the options (bit 0
 * header, bit 1 label, bit 2 f64, bits 3-4 inputs - 1, bits 5-6 targets) and, with bit 7,
 * --predict's reader of pieces (rt_csv_in_*: pieces of 1 to 4 rows, bits 3-4 again)
 * instead of the whole-file one; the rest is the file, plain or gzipped. */
#include "fuzz_rt.h"
#include "nnc_rt.h"
#include "rt_internal.h"

/* Every piece in turn, as --predict reads them. */
static void read_pieces(const NncSourceDesc *src, int in_size, int tgt_size, int real_size, int piece)
{
    RtCsvIn *in = rt_csv_in_open(src, src->path, in_size, tgt_size, real_size);
    if (!in)
        return;
    void *x = malloc((size_t)piece * (size_t)(in_size + tgt_size) * (size_t)real_size);
    int rows = rt_csv_in_rows(in), ok = x != NULL;
    for (int at = 0; ok && at < rows; at += piece)
        ok = rt_csv_in_read(in, x, rows - at < piece ? rows - at : piece) == 0;
    free(x);
    rt_csv_in_close(in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FuzzFile file;
    if (size < 1)
        return 0;
    unsigned o = data[0];
    NncSourceDesc src = {.kind = NNC_SRC_CSV, .header = o & 1, .label = o >> 1 & 1};
    int real_size = o & 4 ? 8 : 4, in_size = 1 + (o >> 3 & 3), tgt_size = o >> 5 & 3;
    fuzz_file(&file, data + 1, size - 1);
    src.path = file.path;
    if (o & 128) {
        read_pieces(&src, in_size, tgt_size, real_size, 1 + (o >> 3 & 3));
        return 0;
    }
    NncData d;
    if (nnc_load_data(&src, NULL, in_size, tgt_size, real_size, &d) == 0)
        nnc_free_data(&d);
    return 0;
}
