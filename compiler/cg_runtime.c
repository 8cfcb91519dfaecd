/* cg_runtime.c - the runtime's files, found at run time rather than compiled in, so that
 * an installed nnc works after the build folder is gone and a moved prefix still works:
 *
 *   $NNC_RUNTIME_DIR/FILE             an override (a test, a relocated runtime)
 *   BIN/../lib/nnc/FILE               installed: BIN is the folder of nnc's own executable
 *   the build tree's FILE             uninstalled: the paths CMake compiled in
 *
 * The install layout (CMakeLists.txt) is bin/nnc, lib/nnc/{libnncrt.a,nncrt_main.o},
 * include/nnc/nnc_rt.h (also in lib/nnc, so one folder holds what a link needs). */
#include "cg_runtime.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef NNC_RUNTIME_LIB
#define NNC_RUNTIME_LIB ""
#endif
#ifndef NNC_RUNTIME_MAIN
#define NNC_RUNTIME_MAIN ""
#endif
#ifndef NNC_RUNTIME_HEADER
#define NNC_RUNTIME_HEADER ""
#endif

static const char *const file_names[] = {"libnncrt.a", "nncrt_main.o", "nnc_rt.h"};
static const char *const build_paths[] = {NNC_RUNTIME_LIB, NNC_RUNTIME_MAIN, NNC_RUNTIME_HEADER};

enum { CG_RT_NFILES = 3 };

/* dir/name into buf; false when it does not fit. */
static int join(char *buf, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(buf, cap, "%s/%s", dir, name);
    return n > 0 && (size_t)n < cap;
}

/* BIN/../lib/nnc/name, BIN the folder of this executable; false when that is unknown. */
static int beside_exe(char *buf, size_t cap, const char *name)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return 0;
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash)
        return 0;
    *slash = 0;
    char dir[PATH_MAX + 16];
    snprintf(dir, sizeof dir, "%s/../lib/nnc", exe);
    return join(buf, cap, dir, name);
}

const char *cg_runtime_file(CgRtFile which)
{
    static char found[CG_RT_NFILES][PATH_MAX + 32];
    char *buf = found[which];
    size_t cap = sizeof found[which];
    const char *name = file_names[which], *env = getenv("NNC_RUNTIME_DIR");
    if (env && *env) {
        if (join(buf, cap, env, name) && access(buf, R_OK) == 0)
            return buf;
        fprintf(stderr, "nnc: error: the runtime file '%s' is not in NNC_RUNTIME_DIR (%s)\n", name, env);
        return NULL;
    }
    if (beside_exe(buf, cap, name) && access(buf, R_OK) == 0)
        return buf;
    if (*build_paths[which] && access(build_paths[which], R_OK) == 0)
        return build_paths[which];
    fprintf(stderr, "nnc: error: cannot find the runtime file '%s' (looked in lib/nnc beside "
            "nnc and in the build folder); set NNC_RUNTIME_DIR to the folder that holds it\n", name);
    return NULL;
}
