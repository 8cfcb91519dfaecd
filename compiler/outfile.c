/* outfile.c - atomic output files (temporary + rename, through symlinks; devices and FIFOs
 * written in place) and the table of temporaries removed on signals and at exit. */
#include "outfile.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- temporaries removed on SIGINT, SIGTERM, SIGHUP and exit ---- */

enum { MAX_TEMPS = 8, TEMP_FREE = 0, TEMP_FILE = 1, TEMP_DIR = 2 };

/* A slot's path is complete before its kind says it is in use, so the handler, which
 * may run between any two statements, only ever sees whole paths. */
static char temp_path[MAX_TEMPS][OUTFILE_PATH_MAX];
static volatile sig_atomic_t temp_kind[MAX_TEMPS];
static volatile sig_atomic_t child_pid;

void outfile_remove_temps(void)
{
    pid_t pid = (pid_t)child_pid;
    if (pid > 0) { /* the linker writes into our folder: stop it first */
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
        child_pid = 0;
    }
    for (int i = 0; i < MAX_TEMPS; i++)
        if (temp_kind[i] == TEMP_FILE) {
            unlink(temp_path[i]);
            temp_kind[i] = TEMP_FREE;
        }
    for (int i = 0; i < MAX_TEMPS; i++) /* folders last: they must be empty by now */
        if (temp_kind[i] == TEMP_DIR) {
            rmdir(temp_path[i]);
            temp_kind[i] = TEMP_FREE;
        }
}

/* Cleans up, then dies of the same signal, so the parent sees what happened. */
static void on_signal(int sig)
{
    outfile_remove_temps();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Once, on the first temporary: a signal that was ignored (nohup) stays ignored. */
static void install_cleanup(void)
{
    static bool done;
    if (done)
        return;
    done = true;
    atexit(outfile_remove_temps);
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    struct sigaction sa = {.sa_handler = on_signal};
    sigfillset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) {
        struct sigaction old;
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_DFL)
            sigaction(sigs[i], &sa, NULL);
    }
}

int outfile_track(const char *path, bool is_dir)
{
    install_cleanup();
    if (strlen(path) >= OUTFILE_PATH_MAX)
        return -1;
    for (int i = 0; i < MAX_TEMPS; i++)
        if (temp_kind[i] == TEMP_FREE) {
            strcpy(temp_path[i], path);
            atomic_signal_fence(memory_order_seq_cst);
            temp_kind[i] = is_dir ? TEMP_DIR : TEMP_FILE;
            return i;
        }
    return -1;
}

void outfile_untrack(int slot)
{
    if (slot >= 0 && slot < MAX_TEMPS)
        temp_kind[slot] = TEMP_FREE;
}

void outfile_track_child(pid_t pid)
{
    install_cleanup();
    child_pid = (sig_atomic_t)pid;
}

int outfile_mktemp(char *template, bool is_dir, int *slot)
{
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    install_cleanup();
    int fd = is_dir ? (mkdtemp(template) ? 0 : -1) : mkstemp(template);
    int err = errno;
    *slot = fd >= 0 ? outfile_track(template, is_dir) : -1;
    sigprocmask(SIG_SETMASK, &old, NULL);
    errno = err;
    return fd;
}

/* ---- where the output goes ---- */

/* What path names once symlinks are followed (path itself when it is no symlink; the
 * name a dangling one points to). False, with errno set, on a loop or a too long path. */
static bool resolve(const char *path, char *real, size_t cap)
{
    if (strlen(path) >= cap) {
        errno = ENAMETOOLONG;
        return false;
    }
    strcpy(real, path);
    for (int hops = 0; hops < 40; hops++) {
        struct stat st;
        char link[OUTFILE_PATH_MAX];
        if (lstat(real, &st) != 0 || !S_ISLNK(st.st_mode))
            return true; /* a real file, or none yet */
        ssize_t n = readlink(real, link, sizeof link - 1);
        if (n < 0)
            return false;
        link[n] = '\0';
        /* a relative target is relative to the link's own folder */
        const char *slash = strrchr(real, '/');
        size_t keep = link[0] == '/' || !slash ? 0 : (size_t)(slash - real) + 1;
        if (keep + (size_t)n >= cap) {
            errno = ENAMETOOLONG;
            return false;
        }
        memcpy(real + keep, link, (size_t)n + 1);
    }
    errno = ELOOP;
    return false;
}

static bool fail(const OutFile *o, int err)
{
    fprintf(stderr, "nnc: error: cannot write '%s': %s\n", o->path, strerror(err));
    return false;
}

/* A device or a FIFO: written in place (the reader, or the device, takes the bytes).
 * Opened by the name given, so /dev/stdout's link to a pipe works too. */
static bool open_through(OutFile *o)
{
    int fd = open(o->path, O_WRONLY | O_NOCTTY);
    if (fd < 0 || !(o->f = fdopen(fd, "wb"))) {
        int err = errno;
        if (fd >= 0)
            close(fd);
        return fail(o, err);
    }
    return true;
}

/* A fresh temporary beside the real file, tracked from the moment it exists. */
static bool open_temp(OutFile *o, unsigned mode)
{
    int n = snprintf(o->tmp, sizeof o->tmp, "%s.tmpXXXXXX", o->real);
    if (n < 0 || (size_t)n >= sizeof o->tmp)
        return fail(o, ENAMETOOLONG);
    int fd = outfile_mktemp(o->tmp, false, &o->slot);
    if (fd < 0)
        return fail(o, errno);
    /* mkstemp makes the file private (0600); an output gets the usual mode less umask */
    mode_t mask = umask(0);
    umask(mask);
    fchmod(fd, (mode_t)mode & ~mask);
    if (!(o->f = fdopen(fd, "wb"))) {
        int err = errno;
        close(fd);
        outfile_abort(o);
        return fail(o, err);
    }
    return true;
}

bool outfile_open(OutFile *o, const char *path, unsigned mode)
{
    o->path = path;
    o->f = NULL;
    o->tmp[0] = '\0';
    o->slot = -1;
    struct stat st;
    bool exists = stat(path, &st) == 0; /* through every link */
    if (exists && S_ISDIR(st.st_mode)) {
        fprintf(stderr, "nnc: error: cannot write '%s': it is a directory\n", path);
        return false;
    }
    if (exists && !S_ISREG(st.st_mode))
        return open_through(o);
    if (!resolve(path, o->real, sizeof o->real))
        return fail(o, errno);
    return open_temp(o, mode);
}

bool outfile_commit(OutFile *o)
{
    bool ok = !ferror(o->f);
    ok &= fclose(o->f) == 0;
    int err = errno;
    o->f = NULL;
    if (ok && !o->tmp[0])
        return true;
    if (ok && rename(o->tmp, o->real) == 0) {
        outfile_untrack(o->slot);
        return true;
    }
    if (ok)
        err = errno;
    outfile_abort(o);
    return fail(o, err);
}

void outfile_abort(OutFile *o)
{
    if (o->f)
        fclose(o->f);
    o->f = NULL;
    if (o->tmp[0])
        remove(o->tmp);
    outfile_untrack(o->slot);
    o->slot = -1;
}

bool outfile_copy(OutFile *o, const char *src)
{
    FILE *in = fopen(src, "rb");
    if (!in) {
        fprintf(stderr, "nnc: error: cannot read '%s': %s\n", src, strerror(errno));
        return false;
    }
    char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        fwrite(buf, 1, n, o->f);
    bool ok = !ferror(in);
    if (!ok)
        fprintf(stderr, "nnc: error: cannot read '%s'\n", src);
    fclose(in);
    return ok;
}
