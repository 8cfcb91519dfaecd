/* test_rt_read.c - rt_read_file's limits (runtime/rt_util.c): a file of exactly max bytes
 * reads, one byte more is "too large", for plain files, gzip data (a small file that
 * inflates past the limit stops there) and pipes; devices and cut gzip data are refused. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "rt_internal.h"

static int fails;

static void expect(int cond, const char *what)
{
    if (!cond) {
        fails++;
        printf("FAIL: %s\n", what);
    }
}

/* Reads path with the limit; the length read, or -1 when refused. */
static long read_len(const char *path, size_t max, int gz)
{
    size_t len = 0;
    unsigned char *b = rt_read_file(path, max, gz, "the test's limit", &len);
    free(b);
    return b ? (long)len : -1;
}

static void write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

/* n zero bytes, gzipped, into path (about n / 1000 bytes); the gzip's length. */
static size_t write_gz(const char *path, size_t n)
{
    gzFile f = gzopen(path, "wb9");
    char zeros[4096] = {0};
    for (size_t at = 0; at < n; at += sizeof zeros)
        gzwrite(f, zeros, (unsigned)(n - at < sizeof zeros ? n - at : sizeof zeros));
    gzclose(f);
    struct stat st;
    stat(path, &st);
    return (size_t)st.st_size;
}

int main(void)
{
    char dir[] = "/tmp/nnc-rt-read-XXXXXX", path[128], gz[128], cut[128], fifo[128];
    if (!mkdtemp(dir))
        return perror("mkdtemp"), 1;
    snprintf(path, sizeof path, "%s/plain", dir);
    snprintf(gz, sizeof gz, "%s/bomb.gz", dir);
    snprintf(cut, sizeof cut, "%s/cut.gz", dir);
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    char text[100];
    memset(text, 'a', sizeof text);
    write_file(path, text, sizeof text);
    expect(read_len(path, 100, 1) == 100, "a file of max bytes reads");
    expect(read_len(path, 99, 1) == -1, "one byte more than max is too large");
    expect(read_len(path, 100000, 0) == 100, "raw read");

    size_t packed = write_gz(gz, 1 << 22);
    expect(packed < 1 << 16, "the bomb is small");
    expect(read_len(gz, 1 << 22, 1) == 1 << 22, "gzip data of max bytes reads");
    expect(read_len(gz, (1 << 22) - 1, 1) == -1, "gzip data past max stops");
    expect(read_len(gz, 1 << 22, 0) == (long)packed, "raw: the gzip bytes themselves");

    size_t len;
    unsigned char *all = rt_read_file(gz, 1 << 23, 0, "", &len);
    write_file(cut, all, len - 20);
    free(all);
    expect(read_len(cut, 1 << 23, 1) == -1, "cut gzip data is refused");
    expect(read_len("/dev/zero", 1 << 20, 1) == -1, "a device is refused");
    expect(read_len(dir, 1 << 20, 1) == -1, "a folder is refused");

    if (mkfifo(fifo, 0600) != 0)
        return perror("mkfifo"), 1;
    pid_t pid = fork();
    if (pid == 0) { /* the writer: zeros until the reader goes */
        FILE *f = fopen(fifo, "wb");
        char zeros[4096] = {0};
        while (f && fwrite(zeros, 1, sizeof zeros, f) == sizeof zeros)
            ;
        _exit(0);
    }
    expect(read_len(fifo, 1 << 20, 1) == -1, "an endless pipe stops at max");
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);

    unlink(path);
    unlink(gz);
    unlink(cut);
    unlink(fifo);
    rmdir(dir);
    printf("%s\n", fails ? "failures" : "ok");
    return fails != 0;
}
