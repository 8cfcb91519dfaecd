/* outfile.h - output files appear whole or not at all, and nnc leaves no temporaries.
 *
 * A regular file (or a new one) is written as a temporary beside it and renamed into
 * place; a symlink is followed, so the file it names is the one replaced and the link
 * stays; a device or a FIFO (-o /dev/null, -o pipe) is written through, never replaced.
 * Every temporary is tracked: SIGINT, SIGTERM, SIGHUP and exit() remove what is left. */
#ifndef NNC_OUTFILE_H
#define NNC_OUTFILE_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

enum { OUTFILE_PATH_MAX = 4096 };

typedef struct OutFile {
    FILE *f;
    const char *path;             /* as given, for messages */
    char real[OUTFILE_PATH_MAX];  /* path with symlinks followed: what is written */
    char tmp[OUTFILE_PATH_MAX];   /* the temporary beside real; "" when writing through */
    int slot;                     /* tmp's entry among the tracked temporaries */
} OutFile;

/* Opens path for writing (a temporary beside it, or the device or FIFO itself); mode is
 * 0666 or 0777, less the umask. Prints "nnc: error: ..." and returns false on failure. */
bool outfile_open(OutFile *o, const char *path, unsigned mode);
/* Closes and renames into place; on any failure removes the temporary and returns false. */
bool outfile_commit(OutFile *o);
/* Closes and removes the temporary. */
void outfile_abort(OutFile *o);
/* Appends the whole file src to o; false (after a message) when it cannot be read. */
bool outfile_copy(OutFile *o, const char *src);

/* Tracks a temporary file or folder to remove if nnc is interrupted or exits; returns
 * its slot for outfile_untrack, or -1 when the table is full (it is then not tracked). */
int outfile_track(const char *path, bool is_dir);
void outfile_untrack(int slot);
/* mkstemp (returning its descriptor) or mkdtemp (returning 0) on template, tracked with
 * no signal in between; *slot is its slot. -1 with errno set on failure. */
int outfile_mktemp(char *template, bool is_dir, int *slot);
/* A child (the linker) to stop before the temporaries go; 0 when there is none. */
void outfile_track_child(pid_t pid);
/* Stops the tracked child and removes the tracked temporaries (async-signal-safe). */
void outfile_remove_temps(void);

#endif
