/* shape.c - small helpers on static shapes, shared by every stage. */
#include <stdio.h>

#include "ast.h"

long long shape_size(Shape s)
{
    long long n = 1;
    for (int i = 0; i < s.rank; i++)
        n *= s.dims[i];
    return n;
}

bool shape_eq(Shape a, Shape b)
{
    if (a.rank != b.rank)
        return false;
    for (int i = 0; i < a.rank; i++)
        if (a.dims[i] != b.dims[i])
            return false;
    return true;
}

const char *shape_str(Shape s, char *buf)
{
    int n = snprintf(buf, SHAPE_STR_MAX, "[");
    for (int i = 0; i < s.rank; i++)
        n += snprintf(buf + n, (size_t)(SHAPE_STR_MAX - n), i ? ", %d" : "%d", s.dims[i]);
    snprintf(buf + n, (size_t)(SHAPE_STR_MAX - n), "]");
    return buf;
}
