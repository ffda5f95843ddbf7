/*
 * Ground truth for 32-bit (ia32 compat) tasks on x86_64: a -m32 program that
 * makes a known set of ia32 syscalls, many of whose numbers mean a different
 * call natively (ia32 5 is open, x86_64 5 is fstat), from every context a
 * recording must cover. Each distinctive call goes through syscall(2) with
 * the i386 SYS_* number, so glibc cannot swap it for another.
 *
 *   compat32 EXEC64      the full run; EXEC64 is the absolute path of the
 *                        64-bit helper (tests/programs/compat32_exec64.c)
 *     main thread        MAIN calls below
 *     second thread      gettid, sched_getaffinity, getpriority, prctl
 *     forked child       (fork via SYS_fork) getppid, setpgid, getpgid,
 *                        alarm, then exit (not exit_group)
 *     forked child       execve EXEC64: a 64-bit program making native
 *                        write, fstat, lseek, uname, getuid, arch_prctl,
 *                        newfstatat, exit_group
 *     forked child       execve /proc/self/exe exec-self: ia32 startup again,
 *                        then getsid, getresuid32, getgroups32, sysinfo, chdir
 *     each child is reaped with waitpid (ia32 only: x86_64 7 is poll)
 *   compat32 exec-self   only the exec-self calls
 *   compat32 probe NAME  makes one ia32 call that no other mode makes and
 *                        prints "probe NAME: ok" or "probe NAME: errno N (E...)".
 *                        NAME: getuid (16-bit, ia32 24), fstat (old, ia32 108),
 *                        lseek (ia32 19), arch_prctl (ia32 384), getitimer,
 *                        getrusage. getuid, fstat, lseek and arch_prctl are
 *                        names the 64-bit helper makes natively: a profile
 *                        that shares one names list across both
 *                        architectures lets them through on ia32 as well.
 *                        Exit 0 ok (ESPIPE from lseek on a pipe counts as ok:
 *                        the call got through), 1 EPERM, 2 other errno,
 *                        3 unknown NAME.
 *
 * Every ia32 and x86_64 syscall the full run makes (ld.so and glibc startup
 * included, as strace -f shows them) is listed in compat32.expected.
 *
 * Exit status of the full run: 0 when no call failed with EPERM (each EPERM
 * is printed) and every child exited 0, 1 otherwise.
 * Build: gcc -m32 -O2 -Wall -pthread -o compat32 compat32.c
 * (needs gcc-multilib; at run time the i386 loader and libc, libc6-i386).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#if !defined(__i386__)
#error "compat32.c must be built with -m32: its syscall numbers are the i386 ones"
#endif

static int eperm;

/* Writes without stdio, so no fstat64/statx/brk appears at first output. */
static void say(int fd, const char *s) { syscall(SYS_write, fd, s, strlen(s)); }

static long call(const char *name, long nr, long a, long b, long c, long d, long e, long f) {
    long r = syscall(nr, a, b, c, d, e, f);
    if (r == -1 && errno == EPERM) {
        char msg[96];
        snprintf(msg, sizeof msg, "compat32: %s: EPERM\n", name);
        say(2, msg);
        eperm++;
    }
    return r;
}
#define CALL(name, ...) call(#name, SYS_##name, __VA_ARGS__)
#define ARGS0 0, 0, 0, 0, 0, 0

static void *thread_main(void *arg) {
    (void)arg;
    char buf[64];
    CALL(gettid, ARGS0);
    CALL(sched_getaffinity, 0, sizeof buf, (long)buf, 0, 0, 0);
    CALL(getpriority, 0 /* PRIO_PROCESS */, 0, 0, 0, 0, 0);
    CALL(prctl, PR_GET_NAME, (long)buf, 0, 0, 0, 0);
    return NULL;
}

static int exec_self(void) {
    char buf[512];
    CALL(getsid, 0, 0, 0, 0, 0, 0);
    CALL(getresuid32, (long)buf, (long)(buf + 4), (long)(buf + 8), 0, 0, 0);
    CALL(getgroups32, 0, 0, 0, 0, 0, 0);
    CALL(sysinfo, (long)buf, 0, 0, 0, 0, 0);
    CALL(chdir, (long)"/", 0, 0, 0, 0, 0);
    return eperm ? 1 : 0;
}

struct probe { const char *name; long nr; long a, b, c; };

static int probe(const char *name) {
    static char buf[512];
    const struct probe probes[] = {
        {"getuid", SYS_getuid, 0, 0, 0},
        {"fstat", SYS_fstat, 0, (long)buf, 0},
        {"lseek", SYS_lseek, 0, 0, SEEK_CUR},
        {"arch_prctl", SYS_arch_prctl, 0x1011 /* ARCH_GET_CPUID */, 0, 0},
        {"getitimer", SYS_getitimer, 0 /* ITIMER_REAL */, (long)buf, 0},
        {"getrusage", SYS_getrusage, 0 /* RUSAGE_SELF */, (long)buf, 0},
    };
    char msg[128];
    for (unsigned i = 0; i < sizeof probes / sizeof probes[0]; i++) {
        if (strcmp(probes[i].name, name) != 0) continue;
        long r = syscall(probes[i].nr, probes[i].a, probes[i].b, probes[i].c);
        int err = r == -1 ? errno : 0;
        if (err == 0)
            snprintf(msg, sizeof msg, "probe %s: ok\n", name);
        else
            snprintf(msg, sizeof msg, "probe %s: errno %d (%s)\n", name, err,
                     err == EPERM ? "EPERM" : err == ENOSYS ? "ENOSYS" : err == ESPIPE ? "ESPIPE" : "other");
        say(1, msg);
        /* lseek on a pipe or tty fails with ESPIPE: the call was let through. */
        return err == 0 || err == ESPIPE ? 0 : err == EPERM ? 1 : 2;
    }
    snprintf(msg, sizeof msg, "probe: unknown name %s\n", name);
    say(2, msg);
    return 3;
}

/* fork through SYS_fork (ia32 2; x86_64 2 is open), not glibc's clone. */
static long fork_raw(void) { return CALL(fork, ARGS0); }

/* Reaps pid with waitpid (ia32 7); nonzero unless it exited 0. */
static int reap(long pid) {
    int status = 0;
    if (pid < 0) return 1;
    if (CALL(waitpid, pid, (long)&status, 0, 0, 0, 0) != pid) return 1;
    return !(status & 0x7f) && ((status >> 8) & 0xff) == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "exec-self") == 0) return exec_self();
    if (argc > 2 && strcmp(argv[1], "probe") == 0) return probe(argv[2]);
    if (argc != 2 || argv[1][0] != '/') {
        say(2, "usage: compat32 /ABSOLUTE/PATH/TO/compat32_exec64 | exec-self | probe NAME\n");
        return 2;
    }

    char buf[4096];
    int fds[2];
    long long pos = 0;

    /* Files: open (x86_64 5 = fstat), read (3 = close), close (6 = lstat). */
    long fd = CALL(open, (long)"/proc/self/stat", O_RDONLY, 0, 0, 0, 0);
    CALL(read, fd, (long)buf, 64, 0, 0, 0);
    CALL(_llseek, fd, 0, 0, (long)&pos, SEEK_SET, 0);      /* 140 = getpriority */
    CALL(fstat64, fd, (long)buf, 0, 0, 0, 0);              /* 197 = removexattr */
    CALL(fcntl64, fd, F_GETFD, 0, 0, 0, 0);                /* 221 = fadvise64 */
    long d = CALL(dup, fd, 0, 0, 0, 0, 0);                 /* 41 = socket */
    CALL(dup2, fd, 50, 0, 0, 0, 0);                        /* 63 = uname */
    CALL(close, d, 0, 0, 0, 0, 0);
    CALL(close, 50, 0, 0, 0, 0, 0);
    CALL(close, fd, 0, 0, 0, 0, 0);
    CALL(stat64, (long)"/", (long)buf, 0, 0, 0, 0);        /* 195 = llistxattr */
    CALL(lstat64, (long)"/proc/self", (long)buf, 0, 0, 0, 0); /* 196 = flistxattr */
    CALL(fstatat64, AT_FDCWD, (long)"/", (long)buf, 0, 0, 0); /* 300 = fanotify_init */
    CALL(access, (long)"/", R_OK, 0, 0, 0, 0);             /* 33 = dup2 */
    CALL(readlink, (long)"/proc/self/exe", (long)buf, sizeof buf, 0, 0, 0); /* 85 = creat */
    CALL(getcwd, (long)buf, sizeof buf, 0, 0, 0, 0);       /* 183 = afs_syscall */
    CALL(statfs64, (long)"/", 84, (long)buf, 0, 0, 0);     /* 268 = fchmodat */
    long dir = CALL(open, (long)"/", O_RDONLY | O_DIRECTORY, 0, 0, 0, 0);
    CALL(getdents64, dir, (long)buf, sizeof buf, 0, 0, 0); /* 220 = semtimedop */
    CALL(fstatfs64, dir, 84, (long)buf, 0, 0, 0);          /* 269 = faccessat */
    CALL(close, dir, 0, 0, 0, 0, 0);
    CALL(pipe, (long)fds, 0, 0, 0, 0, 0);                  /* 42 = connect */
    CALL(close, fds[0], 0, 0, 0, 0, 0);
    CALL(close, fds[1], 0, 0, 0, 0, 0);

    /* Memory: mmap2 (192 = lgetxattr), munmap (91 = fchmod). */
    long map = CALL(mmap2, 0, 4096, 1 /* PROT_READ */, 0x22 /* MAP_PRIVATE|MAP_ANONYMOUS */, -1, 0);
    CALL(munmap, map, 4096, 0, 0, 0, 0);

    /* Sockets, both ways: socketcall (102 = getuid) and direct socket. */
    long sargs[3] = {1 /* AF_UNIX */, 1 /* SOCK_STREAM */, 0};
    long s1 = CALL(socketcall, 1 /* SYS_SOCKET */, (long)sargs, 0, 0, 0, 0);
    long s2 = CALL(socket, 1 /* AF_UNIX */, 2 /* SOCK_DGRAM */, 0, 0, 0, 0);
    CALL(socketpair, 1 /* AF_UNIX */, 1 /* SOCK_STREAM */, 0, (long)fds, 0, 0);
    CALL(close, s1, 0, 0, 0, 0, 0);
    CALL(close, s2, 0, 0, 0, 0, 0);
    CALL(close, fds[0], 0, 0, 0, 0, 0);
    CALL(close, fds[1], 0, 0, 0, 0, 0);

    /* Identity and process. */
    CALL(getuid32, ARGS0);                                 /* 199 = fremovexattr */
    CALL(getgid32, ARGS0);                                 /* 200 = tkill */
    CALL(geteuid32, ARGS0);                                /* 201 = time */
    CALL(getegid32, ARGS0);                                /* 202 = futex */
    CALL(getpid, ARGS0);                                   /* 20 = writev */
    CALL(getpgrp, ARGS0);                                  /* 65 = semop */
    CALL(uname, (long)buf, 0, 0, 0, 0, 0);                 /* 122 = setfsuid */
    CALL(ugetrlimit, 7 /* RLIMIT_NOFILE */, (long)buf, 0, 0, 0, 0); /* 191 = getxattr */
    CALL(times, (long)buf, 0, 0, 0, 0, 0);                 /* 43 = accept */
    long old = CALL(umask, 022, 0, 0, 0, 0, 0);            /* 60 = exit */
    CALL(umask, old, 0, 0, 0, 0, 0);
    CALL(nice, 0, 0, 0, 0, 0, 0);                          /* 34 = pause */
    CALL(sched_yield, ARGS0);                              /* 158 = arch_prctl */

    /* Signals, old style: sigprocmask (126 = capset), sigaction (67 = shmdt). */
    CALL(sigprocmask, 0 /* SIG_BLOCK */, 0, (long)buf, 0, 0, 0);
    CALL(sigaction, 10 /* SIGUSR1 */, 0, (long)buf, 0, 0, 0);

    /* Time: time (13 = rt_sigaction), gettimeofday (78 = getdents),
     * clock_gettime (265 = linkat) and its 64-bit-time twin. */
    CALL(time, 0, 0, 0, 0, 0, 0);
    CALL(gettimeofday, (long)buf, 0, 0, 0, 0, 0);
    CALL(clock_gettime, 1 /* CLOCK_MONOTONIC */, (long)buf, 0, 0, 0, 0);
    CALL(clock_gettime64, 1, (long)buf, 0, 0, 0, 0);

    /* pthread_join may or may not wait on a futex: make both futex calls
     * here so the set is fixed (240 = mq_open). */
    int word = 0;
    CALL(futex, (long)&word, 1 | 128 /* FUTEX_WAKE_PRIVATE */, 1, 0, 0, 0);
    CALL(futex_time64, (long)&word, 1 | 128, 1, 0, 0, 0);

    pthread_t t;
    if (pthread_create(&t, NULL, thread_main, NULL) != 0) { say(2, "compat32: pthread_create failed\n"); return 2; }
    pthread_join(t, NULL);

    int failed = 0;
    long child = fork_raw();
    if (child == 0) {
        CALL(getppid, ARGS0);                              /* 64 = semget */
        CALL(setpgid, 0, 0, 0, 0, 0, 0);                   /* 57 = fork */
        CALL(getpgid, 0, 0, 0, 0, 0, 0);                   /* 132 = utime */
        CALL(alarm, 0, 0, 0, 0, 0, 0);                     /* 27 = mincore */
        syscall(SYS_exit, eperm ? 1 : 0);                  /* 1 = write */
        _exit(1); /* only if exit itself was denied */
    }
    failed |= reap(child);

    child = fork_raw();
    if (child == 0) {
        char *const args[] = {argv[1], NULL};
        char *const env[] = {NULL};
        CALL(execve, (long)argv[1], (long)args, (long)env, 0, 0, 0); /* 11 = munmap */
        syscall(SYS_exit, 2);
        _exit(2);
    }
    failed |= reap(child);

    child = fork_raw();
    if (child == 0) {
        char *const args[] = {argv[0], "exec-self", NULL};
        char *const env[] = {NULL};
        CALL(execve, (long)"/proc/self/exe", (long)args, (long)env, 0, 0, 0);
        syscall(SYS_exit, 2);
        _exit(2);
    }
    failed |= reap(child);

    say(1, eperm || failed ? "compat32: saw EPERM or a failed child\n" : "compat32: ok\n");
    return eperm || failed ? 1 : 0;
}
