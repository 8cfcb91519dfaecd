/* cg_link.c - the object linked with the runtime into an executable by the system C
 * compiler driver, run directly (posix_spawnp, no shell), into a temporary that is renamed
 * into place only when the link succeeded. */
#include "cg.h"

#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

enum { MAX_ARGS = 32 };

/* cc OBJ NNC_RUNTIME_MAIN NNC_RUNTIME_LIB NNC_LINK_EXTRA... -lz -lm -pthread -o OUT */
static int link_args(char **argv, char *extra, const char *obj, const char *out)
{
    int n = 0;
    argv[n++] = "cc";
    argv[n++] = (char *)obj;
    argv[n++] = NNC_RUNTIME_MAIN;
    argv[n++] = NNC_RUNTIME_LIB;
    for (char *tok = strtok(extra, " "); tok && n < MAX_ARGS - 7; tok = strtok(NULL, " "))
        argv[n++] = tok;
    argv[n++] = "-lz";
    argv[n++] = "-lm";
    argv[n++] = "-pthread"; /* the runtime's thread pool */
    argv[n++] = "-o";
    argv[n++] = (char *)out;
    argv[n] = NULL;
    return n;
}

static bool run_cc(const char *obj, const char *out)
{
    char extra[] = NNC_LINK_EXTRA;
    char *argv[MAX_ARGS];
    link_args(argv, extra, obj, out);
    pid_t pid;
    int err = posix_spawnp(&pid, "cc", NULL, NULL, argv, environ);
    if (err) {
        fprintf(stderr, "nnc: error: cannot run the C compiler 'cc' to link: %s\n", strerror(err));
        return false;
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) {
            fprintf(stderr, "nnc: error: waiting for 'cc': %s\n", strerror(errno));
            return false;
        }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return true;
    fprintf(stderr, "nnc: error: linking with 'cc' failed (%s %d)\n",
            WIFEXITED(status) ? "exit status" : "signal",
            WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    return false;
}

bool cg_link(const char *obj, const char *out)
{
    char tmp[4096];
    int len = snprintf(tmp, sizeof tmp, "%s.tmpXXXXXX", out);
    if (len < 0 || (size_t)len >= sizeof tmp) {
        fprintf(stderr, "nnc: error: output path too long: '%s'\n", out);
        return false;
    }
    int fd = mkstemp(tmp); /* reserves a fresh name beside out, on out's file system */
    if (fd < 0) {
        fprintf(stderr, "nnc: error: cannot write '%s': %s\n", out, strerror(errno));
        return false;
    }
    close(fd);
    if (!run_cc(obj, tmp)) {
        remove(tmp);
        return false;
    }
    mode_t mask = umask(0);
    umask(mask);
    if (chmod(tmp, 0777 & ~mask) != 0 || rename(tmp, out) != 0) {
        fprintf(stderr, "nnc: error: cannot write '%s': %s\n", out, strerror(errno));
        remove(tmp);
        return false;
    }
    return true;
}
