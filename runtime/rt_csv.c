/* rt_csv.c - csv("path", header, label): one sample a line, the input's values then the
 * target's values (or one integer class index with label = true). Lines are numbered from
 * 1 as in the file, the header being line 1; blank lines are skipped. The file may be
 * gzipped. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rt_internal.h"

typedef struct CsvCtx {
    const char *path;
    long line;
    int in_size, tgt_size, label, fields;
    int optional; /* the targets may be left out (--predict) */
    NncData *out;
} CsvCtx;

static int is_blank(const char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\r')
        s++;
    return *s == 0;
}

/* Splits buf into NUL-terminated lines in place; returns the count. */
static long split_lines(char *buf, size_t len, char ***lines_out)
{
    long n = 1;
    for (size_t i = 0; i < len; i++)
        n += buf[i] == '\n';
    char **lines = malloc(sizeof *lines * (size_t)n);
    if (!lines)
        return -1;
    long k = 0;
    lines[k++] = buf;
    for (size_t i = 0; i < len; i++)
        if (buf[i] == '\n') {
            buf[i] = 0;
            if (i > 0 && buf[i - 1] == '\r')
                buf[i - 1] = 0;
            lines[k++] = buf + i + 1;
        }
    *lines_out = lines;
    return n;
}

static int count_fields(const char *s)
{
    int n = 1;
    for (; *s; s++)
        n += *s == ',';
    return n;
}

/* The field's text for a message: up to its comma, at most 40 bytes, trimmed. */
static int field_len(const char *start)
{
    int len = 0;
    while (start[len] && start[len] != ',' && len < 40)
        len++;
    while (len > 0 && isspace((unsigned char)start[len - 1]))
        len--;
    return len;
}

/* Whether a finite-looking number overflowed the model's reals: strtod's ERANGE beyond
 * f64, or a value that rounds to an infinity in f32. */
static int beyond_range(double v, int range_error, int rs)
{
    if (range_error && fabs(v) == HUGE_VAL)
        return 1;
    return rs == 4 && isfinite(v) && isinf((float)v);
}

/* Parses one field starting at *s, leaving *s after its comma. */
static int parse_field(CsvCtx *c, char **s, int col, double *v)
{
    char *start = *s, *end;
    while (*start == ' ' || *start == '\t')
        start++;
    errno = 0;
    *v = strtod(start, &end);
    int range_error = errno == ERANGE;
    char *after = end;
    while (*after == ' ' || *after == '\t' || *after == '\r')
        after++;
    int len = field_len(start), rs = c->out->real_size;
    char text[4 * 40 + 1];
    rt_printable(text, sizeof text, start, (size_t)len);
    if (end != start && (*after == ',' || *after == 0) && beyond_range(*v, range_error, rs)) {
        rt_data_error(c->path, c->line, "number '%s' in column %d is beyond the range of f%d "
                      "(the model's precision)", text, col, rs * 8);
        return -1;
    }
    if (end == start || (*after != ',' && *after != 0) || !isfinite(*v)) {
        if (len == 0)
            rt_data_error(c->path, c->line, "missing value in column %d", col);
        else
            rt_data_error(c->path, c->line, "bad number '%s' in column %d", text, col);
        return -1;
    }
    *s = *after == ',' ? after + 1 : after;
    return 0;
}

static int check_label(CsvCtx *c, double v, int col)
{
    int top = c->tgt_size == 1 ? 1 : c->tgt_size - 1;
    if (v != floor(v)) {
        rt_data_error(c->path, c->line, "label %g in column %d is not an integer", v, col);
        return -1;
    }
    if (v < 0 || v > top) {
        rt_data_error(c->path, c->line, "label %g in column %d is out of range 0..%d "
                      "(the target has %d element%s)", v, col, top, c->tgt_size,
                      c->tgt_size == 1 ? "" : "s");
        return -1;
    }
    return 0;
}

static int parse_row(CsvCtx *c, char *s, int i)
{
    int found = count_fields(s);
    if (found != c->fields) {
        char what[64];
        if (c->label)
            snprintf(what, sizeof what, ", then a class index");
        else if (c->tgt_size)
            snprintf(what, sizeof what, ", then %d target value%s", c->tgt_size, c->tgt_size == 1 ? "" : "s");
        else
            what[0] = 0;
        rt_data_error(c->path, c->line, "expected %d values (%d input%s%s), found %d", c->fields,
                      c->in_size, c->in_size == 1 ? "" : "s", what, found);
        return -1;
    }
    int rs = c->out->real_size;
    for (int k = 0; k < c->fields; k++) {
        double v;
        if (parse_field(c, &s, k + 1, &v) != 0)
            return -1;
        if (k < c->in_size)
            rt_set(c->out->x, (size_t)i * (size_t)c->in_size + (size_t)k, rs, v);
        else if (!c->label)
            rt_set(c->out->t, (size_t)i * (size_t)c->tgt_size + (size_t)(k - c->in_size), rs, v);
        else if (check_label(c, v, k + 1) != 0)
            return -1;
        else
            rt_data_set_label(c->out, i, (long)v);
    }
    return 0;
}

/* Rows of the inputs alone, when the targets are optional and the first row has no more. */
static void inputs_alone(CsvCtx *c, char **lines, long nlines, long first)
{
    long l = first;
    while (l < nlines && is_blank(lines[l]))
        l++;
    if (l < nlines && count_fields(lines[l]) == c->in_size) {
        c->tgt_size = c->label = 0;
        c->fields = c->in_size;
    }
}

/* A csv's text split into lines, its rows counted: read whole by rt_load_csv, or piece
 * by piece by --predict (rt_csv_in_*), the same messages either way. */
struct RtCsvIn {
    CsvCtx c;
    char *buf;
    char **lines;
    long nlines, next; /* next: the line the next row is looked for from */
    int rows;
    NncData piece;     /* --predict: a piece's inputs (the caller's) and targets (ours) */
};

/* The file read and split; the rows counted (the targets optional or not). -1 after a
 * message. */
static int csv_open(RtCsvIn *in, const NncSourceDesc *src, const char *path, int in_size,
                    int tgt_size, int real_size, int optional)
{
    if (src->label && tgt_size == 0) {
        rt_data_error(path, 0, "label = true, but the model has no target");
        return -1;
    }
    size_t len;
    char *buf = (char *)rt_read_data(path, &len);
    if (!buf)
        return -1;
    in->buf = buf;
    if (memchr(buf, 0, len)) {
        rt_data_error(path, 0, "not a text file (it holds a NUL byte)");
        return -1;
    }
    size_t bom = len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0; /* UTF-8 mark */
    in->nlines = split_lines(buf + bom, len - bom, &in->lines);
    if (in->nlines < 0) {
        rt_data_error(path, 0, "out of memory");
        return -1;
    }
    CsvCtx c = {.path = path, .in_size = in_size, .tgt_size = tgt_size, .label = src->label,
                .fields = in_size + (src->label ? 1 : tgt_size), .optional = optional};
    in->c = c;
    in->next = src->header ? 1 : 0;
    if (optional)
        inputs_alone(&in->c, in->lines, in->nlines, in->next);
    long rows = 0;
    for (long l = in->next; l < in->nlines; l++)
        rows += !is_blank(in->lines[l]);
    if (rows == 0) {
        rt_data_error(path, 0, "no samples%s", src->header ? " after the header line" : "");
        return -1;
    }
    if (rows > 0x7fffffffL / (in_size ? in_size : 1)) {
        rt_data_error(path, 0, "too many samples");
        return -1;
    }
    in->rows = (int)rows;
    in->piece.real_size = real_size;
    return 0;
}

/* The next n rows into out's samples 0..n-1. */
static int parse_rows(RtCsvIn *in, NncData *out, int n)
{
    CsvCtx *c = &in->c;
    c->out = out;
    for (int i = 0; i < n; i++) {
        long l = in->next;
        while (is_blank(in->lines[l]))
            l++;
        in->next = l + 1;
        c->line = l + 1;
        if (parse_row(c, in->lines[l], i) != 0)
            return -1;
    }
    return 0;
}

static void csv_close(RtCsvIn *in)
{
    free(in->lines);
    free(in->buf);
    rt_free(in->piece.t);
}

int rt_load_csv(const NncSourceDesc *src, const char *path, int in_size, int tgt_size,
                int real_size, NncData *out)
{
    RtCsvIn in = {0};
    int rc = csv_open(&in, src, path, in_size, tgt_size, real_size, 0);
    if (rc == 0) {
        rt_data_alloc(out, in.rows, in_size, tgt_size, real_size);
        rc = parse_rows(&in, out, in.rows);
    }
    csv_close(&in);
    return rc;
}

RtCsvIn *rt_csv_in_open(const NncSourceDesc *src, const char *path, int in_size, int tgt_size,
                        int real_size)
{
    RtCsvIn *in = calloc(1, sizeof *in);
    if (!in) {
        rt_data_error(path, 0, "out of memory");
        return NULL;
    }
    if (csv_open(in, src, path, in_size, tgt_size, real_size, 1) != 0) {
        rt_csv_in_close(in);
        return NULL;
    }
    return in;
}

int rt_csv_in_rows(const RtCsvIn *in)
{
    return in->rows;
}

int rt_csv_in_read(RtCsvIn *in, void *x, int n)
{
    NncData *p = &in->piece;
    if (!p->t && in->c.tgt_size) /* the first piece is the largest */
        p->t = rt_alloc((size_t)n * (size_t)in->c.tgt_size * (size_t)p->real_size);
    p->x = x;
    p->n = n;
    p->in_size = in->c.in_size;
    p->tgt_size = in->c.tgt_size;
    return parse_rows(in, p, n);
}

void rt_csv_in_close(RtCsvIn *in)
{
    if (!in)
        return;
    csv_close(in);
    free(in);
}
