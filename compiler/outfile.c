/* outfile.c - atomic output files (temporary + rename). */
#include "outfile.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* mkstemp makes the file private (0600); an output file gets the usual 0666 less umask. */
static void usual_mode(int fd)
{
    mode_t mask = umask(0);
    umask(mask);
    fchmod(fd, 0666 & ~mask);
}

bool outfile_open(OutFile *o, const char *path)
{
    o->path = path;
    o->f = NULL;
    int n = snprintf(o->tmp, sizeof o->tmp, "%s.tmpXXXXXX", path);
    if (n < 0 || (size_t)n >= sizeof o->tmp) {
        fprintf(stderr, "nnc: error: output path too long: '%s'\n", path);
        return false;
    }
    int fd = mkstemp(o->tmp);
    if (fd >= 0)
        usual_mode(fd);
    if (fd < 0 || !(o->f = fdopen(fd, "wb"))) {
        fprintf(stderr, "nnc: error: cannot write '%s': %s\n", path, strerror(errno));
        if (fd >= 0) {
            close(fd);
            remove(o->tmp);
        }
        return false;
    }
    return true;
}

bool outfile_commit(OutFile *o)
{
    bool ok = !ferror(o->f);
    ok &= fclose(o->f) == 0;
    o->f = NULL;
    if (ok && rename(o->tmp, o->path) == 0)
        return true;
    fprintf(stderr, "nnc: error: cannot write '%s': %s\n", o->path, strerror(errno));
    remove(o->tmp);
    return false;
}

void outfile_abort(OutFile *o)
{
    if (o->f)
        fclose(o->f);
    o->f = NULL;
    remove(o->tmp);
}
