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

static int parse_lines(CsvCtx *c, char **lines, long nlines, int header)
{
    long first = header ? 1 : 0, rows = 0;
    if (c->optional)
        inputs_alone(c, lines, nlines, first);
    for (long l = first; l < nlines; l++)
        rows += !is_blank(lines[l]);
    if (rows == 0) {
        rt_data_error(c->path, 0, "no samples%s", header ? " after the header line" : "");
        return -1;
    }
    if (rows > 0x7fffffffL / (c->in_size ? c->in_size : 1)) {
        rt_data_error(c->path, 0, "too many samples");
        return -1;
    }
    rt_data_alloc(c->out, (int)rows, c->in_size, c->tgt_size, c->out->real_size);
    int i = 0;
    for (long l = first; l < nlines; l++) {
        c->line = l + 1;
        if (!is_blank(lines[l]) && parse_row(c, lines[l], i++) != 0)
            return -1;
    }
    return 0;
}

static int load_csv(const NncSourceDesc *src, const char *path, int in_size, int tgt_size,
                    int real_size, NncData *out, int optional)
{
    if (src->label && tgt_size == 0) {
        rt_data_error(path, 0, "label = true, but the model has no target");
        return -1;
    }
    size_t len;
    char *buf = (char *)rt_read_data(path, &len);
    if (!buf)
        return -1;
    if (memchr(buf, 0, len)) {
        rt_data_error(path, 0, "not a text file (it holds a NUL byte)");
        free(buf);
        return -1;
    }
    size_t bom = len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0; /* UTF-8 mark */
    char **lines = NULL;
    long nlines = split_lines(buf + bom, len - bom, &lines);
    CsvCtx c = {.path = path, .in_size = in_size, .tgt_size = tgt_size, .label = src->label,
                .fields = in_size + (src->label ? 1 : tgt_size), .optional = optional, .out = out};
    out->real_size = real_size;
    int rc = nlines < 0 ? -1 : parse_lines(&c, lines, nlines, src->header);
    if (nlines < 0)
        rt_data_error(path, 0, "out of memory");
    free(lines);
    free(buf);
    return rc;
}

int rt_load_csv(const NncSourceDesc *src, const char *path, int in_size, int tgt_size,
                int real_size, NncData *out)
{
    return load_csv(src, path, in_size, tgt_size, real_size, out, 0);
}

int rt_load_csv_inputs(const NncSourceDesc *src, const char *path, int in_size, int tgt_size,
                       int real_size, NncData *out)
{
    return load_csv(src, path, in_size, tgt_size, real_size, out, 1);
}
