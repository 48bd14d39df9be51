#ifndef VHSM_CLINUX_SHIM_H
#define VHSM_CLINUX_SHIM_H

#include <sys/ioctl.h>
#include <linux/sev-guest.h>

/* _IOWR() is not importable; publish the request numbers.
 * _IOWR('S', nr, struct snp_guest_request_ioctl) = 0xC0205300, 0xC0205301, 0xC0205302. */
static const unsigned long CLINUX_SNP_GET_REPORT = SNP_GET_REPORT;
static const unsigned long CLINUX_SNP_GET_DERIVED_KEY = SNP_GET_DERIVED_KEY;
static const unsigned long CLINUX_SNP_GET_EXT_REPORT = SNP_GET_EXT_REPORT;


/* ---- vhsm-init (Boot): what Swift cannot call or import directly. ---- */

#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/signalfd.h>
#include <sys/reboot.h>
#include <sys/vfs.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <net/if.h>
#include <net/route.h>
#include <linux/module.h>
#include <spawn.h>
#include <signal.h>

#ifndef POSIX_SPAWN_SETSID
#define POSIX_SPAWN_SETSID 0x80 /* glibc >= 2.26, declared only under _GNU_SOURCE */
#endif

/* finit_module(2) has no glibc wrapper and syscall(2) is variadic. Returns 0 or -errno. */
static inline int clinux_finit_module(int fd, const char *params, int flags) {
    long result = syscall(SYS_finit_module, fd, params, flags);
    return result == 0 ? 0 : -errno;
}

static const int CLINUX_MODULE_INIT_COMPRESSED_FILE = MODULE_INIT_COMPRESSED_FILE;

/* The number of CPUs this process may run on (sched_getaffinity(2)); 0 if unknown. CPU_COUNT needs _GNU_SOURCE
 * before the first libc header, which a module's header cannot guarantee, so the mask is counted here. */
static inline int clinux_affinity_cpu_count(void) {
    unsigned long mask[16] = {0}; /* 1024 CPUs */
    long bytes = syscall(SYS_sched_getaffinity, 0, sizeof mask, mask);
    if (bytes <= 0) return 0;
    int count = 0;
    for (long i = 0; i < bytes / (long)sizeof(unsigned long); i++) count += __builtin_popcountl(mask[i]);
    return count;
}

/* reboot(2) commands (sys/reboot.h spells them as casts Swift does not import reliably). */
static const int CLINUX_RB_POWER_OFF = RB_POWER_OFF;
static const int CLINUX_RB_AUTOBOOT = RB_AUTOBOOT;
static const int CLINUX_RB_HALT_SYSTEM = RB_HALT_SYSTEM;
static const int CLINUX_RB_DISABLE_CAD = RB_DISABLE_CAD;

/* Network ioctls over an AF_INET datagram socket. Addresses are IPv4 in network byte order.
 * Each returns 0 or -errno. */
static inline int clinux_ifreq_name(struct ifreq *request, const char *name) {
    memset(request, 0, sizeof *request);
    if (strlen(name) >= IFNAMSIZ) return -ENAMETOOLONG;
    strncpy(request->ifr_name, name, IFNAMSIZ - 1);
    return 0;
}

static inline int clinux_if_set_ipv4(int fd, const char *name, unsigned long request_number, uint32_t address) {
    struct ifreq request;
    int status = clinux_ifreq_name(&request, name);
    if (status != 0) return status;
    struct sockaddr_in *in = (struct sockaddr_in *)&request.ifr_addr;
    in->sin_family = AF_INET;
    in->sin_addr.s_addr = address;
    return ioctl(fd, request_number, &request) == 0 ? 0 : -errno;
}

/* SIOCSIFADDR, then SIOCSIFNETMASK. */
static inline int clinux_if_set_address(int fd, const char *name, uint32_t address, uint32_t netmask) {
    int status = clinux_if_set_ipv4(fd, name, SIOCSIFADDR, address);
    if (status != 0) return status;
    return clinux_if_set_ipv4(fd, name, SIOCSIFNETMASK, netmask);
}

/* SIOCGIFFLAGS, then SIOCSIFFLAGS with IFF_UP (and IFF_RUNNING, which the kernel ignores). */
static inline int clinux_if_up(int fd, const char *name) {
    struct ifreq request;
    int status = clinux_ifreq_name(&request, name);
    if (status != 0) return status;
    if (ioctl(fd, SIOCGIFFLAGS, &request) != 0) return -errno;
    request.ifr_flags |= IFF_UP | IFF_RUNNING;
    return ioctl(fd, SIOCSIFFLAGS, &request) == 0 ? 0 : -errno;
}

/* SIOCADDRT: 0.0.0.0/0 via gateway. */
static inline int clinux_add_default_route(int fd, uint32_t gateway) {
    struct rtentry route;
    memset(&route, 0, sizeof route);
    struct sockaddr_in *destination = (struct sockaddr_in *)&route.rt_dst;
    struct sockaddr_in *via = (struct sockaddr_in *)&route.rt_gateway;
    struct sockaddr_in *mask = (struct sockaddr_in *)&route.rt_genmask;
    destination->sin_family = AF_INET;
    via->sin_family = AF_INET;
    via->sin_addr.s_addr = gateway;
    mask->sin_family = AF_INET;
    route.rt_flags = RTF_UP | RTF_GATEWAY;
    return ioctl(fd, SIOCADDRT, &route) == 0 ? 0 : -errno;
}

/* signalfd(2) over a set of signal numbers; the same set is blocked first. Returns the fd or -errno. */
static inline int clinux_block_signals_to_fd(const int *signals, int count) {
    sigset_t set;
    sigemptyset(&set);
    for (int i = 0; i < count; i++) sigaddset(&set, signals[i]);
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0) return -errno;
    int fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    return fd >= 0 ? fd : -errno;
}

/* Reads one pending signal from a signalfd: its number, 0 when none is pending, or -errno. */
static inline int clinux_read_signal(int fd) {
    struct signalfd_siginfo info;
    ssize_t count = read(fd, &info, sizeof info);
    if (count == (ssize_t)sizeof info) return (int)info.ssi_signo;
    if (count < 0 && (errno == EAGAIN || errno == EINTR)) return 0;
    return count < 0 ? -errno : -EIO;
}

/* statfs(2) f_type, or 0 with errno set. */
static inline long clinux_filesystem_type(const char *path) {
    struct statfs info;
    return statfs(path, &info) == 0 ? (long)info.f_type : 0;
}


/* posix_spawn for a child of PID 1: empty signal mask, every signal at its default disposition (PID 1 blocks
 * and catches signals; neither may leak into the child) and, with new_session, its own session and process
 * group. Returns 0 or an errno value. */
static inline int clinux_spawn(pid_t *pid, const char *path, char *const argv[], char *const envp[],
                               int new_session) {
    posix_spawnattr_t attributes;
    int status = posix_spawnattr_init(&attributes);
    if (status != 0) return status;
    sigset_t empty, all;
    sigemptyset(&empty);
    sigfillset(&all);
    short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
    if (new_session) flags |= POSIX_SPAWN_SETSID;
    status = posix_spawnattr_setflags(&attributes, flags);
    if (status == 0) status = posix_spawnattr_setsigmask(&attributes, &empty);
    if (status == 0) status = posix_spawnattr_setsigdefault(&attributes, &all);
    if (status == 0) status = posix_spawn(pid, path, NULL, &attributes, argv, envp);
    posix_spawnattr_destroy(&attributes);
    return status;
}

/* ---- vhsmd (KeyService): the system SQLite (libsqlite3, linked by KeyService only). ---- */

#include <sqlite3.h>

/* ---- vhsmd (KeyService): getrandom(2), which Glibc's module does not export. ---- */

#include <sys/random.h>

/* SQLITE_TRANSIENT is a cast macro and does not import: bind copies of Swift-owned bytes through these. */
static inline int clinux_sqlite3_bind_blob_copy(sqlite3_stmt *statement, int index, const void *bytes, int count) {
    return sqlite3_bind_blob(statement, index, bytes, count, SQLITE_TRANSIENT);
}

static inline int clinux_sqlite3_bind_text_copy(sqlite3_stmt *statement, int index, const char *text, int count) {
    return sqlite3_bind_text(statement, index, text, count, SQLITE_TRANSIENT);
}

#endif
