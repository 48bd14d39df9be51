/* failio: an LD_PRELOAD shim that makes writes and syncs fail on files below one directory, for
 * scripts/faults-test.sh (failing storage under vhsmd).
 *
 *   FAILIO_DIR      the directory (an absolute, canonical path) whose files fail; nothing else is touched
 *   FAILIO_TRIGGERS a directory of trigger files, checked on every call:
 *                     fsync   fsync and fdatasync fail
 *                     write   write, pwrite, pwrite64, writev and pwritev fail
 *                     enospc  the failures report ENOSPC instead of EIO
 *   FAILIO_LOG      a file that gets one line per injected failure (so a test can prove faults were injected)
 *
 * A failing call does nothing and returns -1 with errno set, as a disk that refuses the operation would. Which
 * file a descriptor names is read from /proc/self/fd, so sockets, pipes and files elsewhere pass through.
 * Build: gcc -shared -fPIC -O2 -o failio.so failio.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);
typedef ssize_t (*writev_fn)(int, const struct iovec *, int);
typedef ssize_t (*pwritev_fn)(int, const struct iovec *, int, off_t);
typedef int (*sync_fn)(int);

static void *real(const char *name) { return dlsym(RTLD_NEXT, name); }

/* The errno to inject when the trigger `kind` exists and `fd` names a file below FAILIO_DIR; 0 otherwise. */
static int injected(int fd, const char *kind, const char *call) {
    const char *dir = getenv("FAILIO_DIR"), *triggers = getenv("FAILIO_TRIGGERS");
    if (!dir || !triggers || !*dir) return 0;
    char trigger[4096];
    snprintf(trigger, sizeof trigger, "%s/%s", triggers, kind);
    if (access(trigger, F_OK) != 0) return 0;
    char link[64], target[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n <= 0) return 0;
    target[n] = 0;
    size_t length = strlen(dir);
    if (strncmp(target, dir, length) != 0 || (target[length] != '/' && target[length] != 0)) return 0;
    snprintf(trigger, sizeof trigger, "%s/enospc", triggers);
    int code = access(trigger, F_OK) == 0 ? ENOSPC : EIO;
    const char *log = getenv("FAILIO_LOG");
    if (log) {
        int out = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (out >= 0) {
            char line[4200];
            int size = snprintf(line, sizeof line, "%s %s %s\n", call, strerror(code), target);
            ((write_fn)real("write"))(out, line, size > 0 && (size_t)size < sizeof line ? (size_t)size : 0);
            close(out);
        }
    }
    return code;
}

#define FAIL_IF(fd, kind, call)                 \
    do {                                        \
        int code = injected(fd, kind, call);    \
        if (code) {                             \
            errno = code;                       \
            return -1;                          \
        }                                       \
    } while (0)

ssize_t write(int fd, const void *buffer, size_t count) {
    FAIL_IF(fd, "write", "write");
    return ((write_fn)real("write"))(fd, buffer, count);
}

ssize_t pwrite(int fd, const void *buffer, size_t count, off_t offset) {
    FAIL_IF(fd, "write", "pwrite");
    return ((pwrite_fn)real("pwrite"))(fd, buffer, count, offset);
}

ssize_t pwrite64(int fd, const void *buffer, size_t count, off_t offset) {
    FAIL_IF(fd, "write", "pwrite64");
    return ((pwrite_fn)real("pwrite64"))(fd, buffer, count, offset);
}

ssize_t writev(int fd, const struct iovec *vector, int count) {
    FAIL_IF(fd, "write", "writev");
    return ((writev_fn)real("writev"))(fd, vector, count);
}

ssize_t pwritev(int fd, const struct iovec *vector, int count, off_t offset) {
    FAIL_IF(fd, "write", "pwritev");
    return ((pwritev_fn)real("pwritev"))(fd, vector, count, offset);
}

int fsync(int fd) {
    FAIL_IF(fd, "fsync", "fsync");
    return ((sync_fn)real("fsync"))(fd);
}

int fdatasync(int fd) {
    FAIL_IF(fd, "fsync", "fdatasync");
    return ((sync_fn)real("fdatasync"))(fd);
}
