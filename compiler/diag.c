/* diag.c - the one place that formats messages for the user. */
#include "diag.h"

#include <stdarg.h>
#include <string.h>

enum { SHOW_MAX = 160, SHOW_CONTEXT = 70 };

void diag_init(Diag *d, const char *path, const char *text, size_t len)
{
    memset(d, 0, sizeof *d);
    d->path = path;
    d->text = text;
    d->len = len;
    d->out = stderr;
    d->max_errors = 20;
}

const char *diag_line(const Diag *d, int line, size_t *len)
{
    const char *p = d->text, *end = d->text + d->len;
    for (int l = 1; l < line && p < end; l++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            return NULL;
        p = nl + 1;
    }
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
    if (n && p[n - 1] == '\r')
        n--;
    *len = n;
    return p;
}

/* Control bytes would garble a terminal; tabs are kept so the caret lines up. */
static void put_visible(FILE *out, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        fputc((c < 0x20 && c != '\t') || c == 0x7f ? '?' : c, out);
    }
}

/* The source line, shortened around the column when it is very long, and a caret. */
static void show_source(const Diag *d, Loc loc)
{
    size_t len;
    const char *line = diag_line(d, loc.line, &len);
    if (!line)
        return;
    size_t col = loc.col > 0 ? (size_t)loc.col - 1 : 0;
    if (col > len)
        col = len;
    size_t from = 0, to = len;
    if (len > SHOW_MAX) {
        from = col > SHOW_CONTEXT ? col - SHOW_CONTEXT : 0;
        to = col + SHOW_CONTEXT < len ? col + SHOW_CONTEXT : len;
    }
    const char *pre = from > 0 ? "..." : "";
    fputs(pre, d->out);
    put_visible(d->out, line + from, to - from);
    fputs(to < len ? "...\n" : "\n", d->out);
    fputs(pre, d->out);
    for (size_t i = from; i < col; i++)
        fputc(line[i] == '\t' ? '\t' : ' ', d->out);
    fputs("^\n", d->out);
}

static void report(Diag *d, Loc loc, const char *kind, const char *fmt, va_list ap)
{
    if (loc.line > 0)
        fprintf(d->out, "%s:%d:%d: %s: ", d->path, loc.line, loc.col, kind);
    else
        fprintf(d->out, "%s: %s: ", d->path, kind);
    vfprintf(d->out, fmt, ap);
    fputc('\n', d->out);
    if (loc.line > 0)
        show_source(d, loc);
}

void diag_error(Diag *d, Loc loc, const char *fmt, ...)
{
    d->nerrors++;
    int limit = d->max_errors > 0 ? d->max_errors : 20;
    if (d->nerrors > limit) {
        if (d->nerrors == limit + 1)
            fprintf(d->out, "%s: error: too many errors, stopping\n", d->path);
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    report(d, loc, "error", fmt, ap);
    va_end(ap);
}

void diag_warning(Diag *d, Loc loc, const char *fmt, ...)
{
    d->nwarnings++;
    va_list ap;
    va_start(ap, fmt);
    report(d, loc, "warning", fmt, ap);
    va_end(ap);
}

void diag_note(Diag *d, Loc loc, const char *fmt, ...)
{
    if (d->nerrors > (d->max_errors > 0 ? d->max_errors : 20))
        return;
    va_list ap;
    va_start(ap, fmt);
    report(d, loc, "note", fmt, ap);
    va_end(ap);
}
