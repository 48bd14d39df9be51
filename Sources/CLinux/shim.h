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

/* ---- vhsm-init (Boot): the service's confinement (an unprivileged user, no_new_privs, a seccomp filter). ---- */

#include <fcntl.h>
#include <grp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <linux/sched.h>
#include <sys/wait.h>

/* The system calls the service's seccomp filter refuses with EPERM (x86_64 numbers; the filter kills a process
 * that calls in with another architecture, or with the x32 bit set). A deny list: the Swift runtime's own calls
 * are left alone. execve stays allowed, so the filter is installed before the service is executed. */
static const int clinux_seccomp_denied[] = {
    __NR_ptrace, __NR_process_vm_readv, __NR_process_vm_writev,
    __NR_mount, __NR_umount2, __NR_pivot_root, __NR_chroot,
    __NR_move_mount, __NR_open_tree, __NR_fsopen, __NR_fsconfig, __NR_fsmount, __NR_fspick, __NR_mount_setattr,
    __NR_init_module, __NR_finit_module, __NR_delete_module,
    __NR_kexec_load, __NR_kexec_file_load,
    __NR_bpf, __NR_perf_event_open, __NR_userfaultfd,
    __NR_keyctl, __NR_add_key, __NR_request_key,
    __NR_reboot, __NR_swapon, __NR_swapoff, __NR_acct,
    __NR_unshare, __NR_setns, __NR_open_by_handle_at, __NR_name_to_handle_at,
};
static const char *const clinux_seccomp_denied_names[] = {
    "ptrace", "process_vm_readv", "process_vm_writev",
    "mount", "umount2", "pivot_root", "chroot",
    "move_mount", "open_tree", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
    "init_module", "finit_module", "delete_module",
    "kexec_load", "kexec_file_load",
    "bpf", "perf_event_open", "userfaultfd",
    "keyctl", "add_key", "request_key",
    "reboot", "swapon", "swapoff", "acct",
    "unshare", "setns", "open_by_handle_at", "name_to_handle_at",
};
#define CLINUX_SECCOMP_DENIED_COUNT ((int)(sizeof clinux_seccomp_denied / sizeof clinux_seccomp_denied[0]))
static inline int clinux_seccomp_denied_count(void) { return CLINUX_SECCOMP_DENIED_COUNT; }
static inline const char *clinux_seccomp_denied_name(int index) {
    return index >= 0 && index < CLINUX_SECCOMP_DENIED_COUNT ? clinux_seccomp_denied_names[index] : 0;
}

/* Namespaces a clone(2) may not create (clone3 answers ENOSYS, so glibc falls back to clone, whose flags the
 * filter can read). */
#define CLINUX_CLONE_NAMESPACES \
    (CLONE_NEWNS | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWCGROUP)

/* The filter: fixed instructions, then two per denied call. Writes it to `program` (room for
 * CLINUX_SECCOMP_MAX instructions) and returns the instruction count. Allocation-free, so a forked child can
 * build it. */
#define CLINUX_SECCOMP_MAX 128
static inline int clinux_seccomp_build(struct sock_filter *program) {
    int n = 0;
    /* The architecture: anything but x86_64 is killed (its numbers mean other calls). */
    program[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
    program[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
    program[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
    program[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
    /* x32 calls (bit 30 set) are the same calls under other numbers: killed. */
    program[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, 0, 1);
    program[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
    for (int i = 0; i < CLINUX_SECCOMP_DENIED_COUNT; i++) {
        program[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)clinux_seccomp_denied[i], 0, 1);
        program[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA));
    }
    program[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone3, 0, 1);
    program[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA));
    program[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone, 1, 0);
    program[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    /* clone: the low word of its flags (args[0]). */
    program[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0]));
    program[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, CLINUX_CLONE_NAMESPACES, 0, 1);
    program[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA));
    program[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    return n;
}

/* What clinux_spawn_confined reports when the child could not be set up: the step that failed and its errno. */
enum {
    CLINUX_STEP_NONE = 0, CLINUX_STEP_DESCRIPTOR, CLINUX_STEP_SETSID, CLINUX_STEP_SETGROUPS, CLINUX_STEP_SETGID,
    CLINUX_STEP_SETUID, CLINUX_STEP_NO_NEW_PRIVS, CLINUX_STEP_SECCOMP, CLINUX_STEP_SIGNALS, CLINUX_STEP_EXEC,
    CLINUX_STEP_FORK,
};

/* fork and exec for the service: in the child, `inherit_fd` (if >= 0) becomes `target_fd` and every other
 * descriptor above 2 is closed; its own session; with uid/gid >= 0, setgroups(0), setgid, setuid; with `confine`,
 * no_new_privs and the seccomp filter; an empty signal mask and default dispositions; then execve. Only
 * async-signal-safe calls between fork and exec (PID 1 has other threads). Returns 0 with *pid set, or the errno
 * of the step written to *step. */
static inline int clinux_spawn_confined(pid_t *pid, const char *path, char *const argv[], char *const envp[],
                                        int inherit_fd, int target_fd, long uid, long gid, int confine, int *step) {
    int report[2];
    *step = CLINUX_STEP_NONE;
    if (syscall(SYS_pipe2, report, O_CLOEXEC) != 0) { *step = CLINUX_STEP_FORK; return errno; }
    pid_t child = fork();
    if (child < 0) {
        int error = errno;
        close(report[0]);
        close(report[1]);
        *step = CLINUX_STEP_FORK;
        return error;
    }
    if (child == 0) {
        int failed = CLINUX_STEP_NONE;
        struct sock_filter program[CLINUX_SECCOMP_MAX];
        int writer = report[1];
        close(report[0]);
        /* The report pipe moves above every number the child keeps. */
        if (writer <= target_fd || writer <= 2) {
            int moved = fcntl(writer, F_DUPFD_CLOEXEC, target_fd > 2 ? target_fd + 1 : 3);
            if (moved < 0) _exit(127);
            close(writer);
            writer = moved;
        }
        if (inherit_fd >= 0) {
            if (inherit_fd == target_fd) {
                if (fcntl(target_fd, F_SETFD, 0) != 0) { failed = CLINUX_STEP_DESCRIPTOR; goto fail; }
            } else if (dup2(inherit_fd, target_fd) < 0) { failed = CLINUX_STEP_DESCRIPTOR; goto fail; }
        }
        {
            int keep = inherit_fd >= 0 ? target_fd : 2;
            for (int fd = 3; fd < 65536; fd++) {
                if (fd == keep || fd == writer) continue;
#ifdef SYS_close_range
                if (fd > keep && fd > writer) {
                    if (syscall(SYS_close_range, (unsigned)fd, ~0u, 0) == 0) break;
                }
#endif
                close(fd);
                if (fd > 4096) break;
            }
        }
        if (setsid() < 0) { failed = CLINUX_STEP_SETSID; goto fail; }
        if (uid >= 0 && gid >= 0) {
            if (setgroups(0, NULL) != 0) { failed = CLINUX_STEP_SETGROUPS; goto fail; }
            if (setgid((gid_t)gid) != 0) { failed = CLINUX_STEP_SETGID; goto fail; }
            if (setuid((uid_t)uid) != 0) { failed = CLINUX_STEP_SETUID; goto fail; }
        }
        if (confine) {
            if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) { failed = CLINUX_STEP_NO_NEW_PRIVS; goto fail; }
            struct sock_fprog filter = {(unsigned short)clinux_seccomp_build(program), program};
            if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &filter, 0, 0) != 0) {
                failed = CLINUX_STEP_SECCOMP;
                goto fail;
            }
        }
        {
            sigset_t empty;
            sigemptyset(&empty);
            struct sigaction standard;
            memset(&standard, 0, sizeof standard);
            standard.sa_handler = SIG_DFL;
            for (int number = 1; number < NSIG; number++) {
                if (number == SIGKILL || number == SIGSTOP) continue;
                (void)sigaction(number, &standard, NULL);
            }
            if (sigprocmask(SIG_SETMASK, &empty, NULL) != 0) { failed = CLINUX_STEP_SIGNALS; goto fail; }
        }
        execve(path, argv, envp);
        failed = CLINUX_STEP_EXEC;
    fail:;
        int message[2] = {failed, errno};
        ssize_t ignored = write(writer, message, sizeof message);
        (void)ignored;
        _exit(127);
    }
    close(report[1]);
    int message[2] = {0, 0};
    ssize_t count;
    do { count = read(report[0], message, sizeof message); } while (count < 0 && errno == EINTR);
    close(report[0]);
    if (count == (ssize_t)sizeof message) {
        int status;
        while (waitpid(child, &status, 0) < 0 && errno == EINTR) {}
        *step = message[0];
        return message[1] != 0 ? message[1] : EIO;
    }
    *pid = child;
    return 0;
}

/* The peer's uid on a unix socket (SO_PEERCRED), or -1. */
static inline long clinux_peer_uid(int fd) {
    struct { pid_t pid; uid_t uid; gid_t gid; } credentials; /* struct ucred, declared only under _GNU_SOURCE */
    socklen_t size = sizeof credentials;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &size) != 0) return -1;
    return (long)credentials.uid;
}

/* SO_RCVTIMEO and SO_SNDTIMEO on a socket, in milliseconds. Returns 0 or -errno. */
static inline int clinux_socket_timeouts(int fd, int milliseconds) {
    struct timeval limit = {milliseconds / 1000, (milliseconds % 1000) * 1000};
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit) != 0) return -errno;
    if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit) != 0) return -errno;
    return 0;
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
