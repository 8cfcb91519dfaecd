/* cg_link.c - the object linked with the runtime into an executable by the system C
 * compiler driver, run directly (posix_spawnp, no shell; cg_spawn runs the tools of
 * cg_lib.c too). The executable goes into nnc's
 * private temporary folder; codegen.c moves it into place (outfile.c) once the link worked. */
#include "cg.h"
#include "cg_lib.h"
#include "cg_runtime.h"
#include "outfile.h"

#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

enum { MAX_ARGS = 32 };

/* Whether the gold linker is on PATH: it links an executable a third faster than ld.bfd
 * (fashion_mlp: 55 against 85 ms), and binutils has it, but not everywhere. */
static bool have_gold(void)
{
    const char *path = getenv("PATH");
    char buf[4096];
    while (path && *path) {
        size_t len = strcspn(path, ":");
        if (len && len < sizeof buf - 16) {
            memcpy(buf, path, len);
            strcpy(buf + len, "/ld.gold");
            if (access(buf, X_OK) == 0)
                return true;
        }
        path += len + (path[len] == ':');
    }
    return false;
}

/* cc OBJ [OBJ2] RUNTIME_MAIN RUNTIME_LIB NNC_LINK_EXTRA... -lz -lm -pthread -o OUT; the
 * runtime's files as cg_runtime.c finds them. -1 after a message when they are missing. */
static int link_args(char **argv, char *extra, const char *obj, const char *obj2, const char *out)
{
    const char *main_obj = cg_runtime_file(CG_RT_FILE_MAIN);
    const char *lib = main_obj ? cg_runtime_file(CG_RT_FILE_LIB) : NULL;
    if (!lib)
        return -1;
    int n = 0;
    argv[n++] = "cc";
    if (have_gold())
        argv[n++] = "-fuse-ld=gold";
    argv[n++] = (char *)obj;
    if (obj2)
        argv[n++] = (char *)obj2;
    argv[n++] = (char *)main_obj;
    argv[n++] = (char *)lib;
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

/* Starts argv[0]. Signals wait from before the spawn until the child is tracked, so that
 * an interrupted nnc always stops it before removing its folder; the child itself starts
 * with nnc's usual signal mask. */
static int spawn_child(pid_t *pid, char **argv)
{
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setsigmask(&attr, &old);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
    int err = posix_spawnp(pid, argv[0], NULL, &attr, argv, environ);
    if (!err)
        outfile_track_child(*pid);
    posix_spawnattr_destroy(&attr);
    sigprocmask(SIG_SETMASK, &old, NULL);
    return err;
}

bool cg_spawn(char **argv, const char *what)
{
    pid_t pid;
    int err = spawn_child(&pid, argv);
    if (err) {
        fprintf(stderr, "nnc: error: cannot run '%s' to %s: %s\n", argv[0], what, strerror(err));
        return false;
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) {
            fprintf(stderr, "nnc: error: waiting for '%s': %s\n", argv[0], strerror(errno));
            outfile_track_child(0);
            return false;
        }
    outfile_track_child(0);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return true;
    fprintf(stderr, "nnc: error: '%s' failed to %s (%s %d)\n", argv[0], what,
            WIFEXITED(status) ? "exit status" : "signal",
            WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    return false;
}

static bool run_cc(const char *obj, const char *obj2, const char *out)
{
    char extra[] = NNC_LINK_EXTRA;
    char *argv[MAX_ARGS];
    return link_args(argv, extra, obj, obj2, out) >= 0 && cg_spawn(argv, "link");
}

bool cg_link(const char *obj, const char *obj2, const char *out)
{
    if (run_cc(obj, obj2, out))
        return true;
    remove(out);
    return false;
}
