/*
 * Ground truth for recorder's tests: makes a known set of syscalls from
 * every kind of context a recording must cover. Each call goes through
 * syscall(2), so glibc wrappers and the vDSO cannot hide or substitute it.
 *
 *   main thread     MAIN_CALLS below
 *   second thread   getrlimit, sched_getparam, ioprio_get
 *   forked child    setpgid, getpgid, alarm
 *   exec'd grandchild (this program, argv[1] == "grandchild")
 *                   statx, readlinkat, faccessat2
 *   daemon          double fork + setsid, then after 1.5 s: syncfs, fadvise64
 *                   and a marker file (argv[1] = marker path)
 *   main, after a 1 s sleep: getcpu, rt_sigpending
 *
 * Exit status: 0 when no call failed with EPERM, 1 otherwise (each EPERM is
 * printed), so a profile that misses a call shows up as a failure here.
 * The Rust test keeps the same list (tests/src/ground_truth.rs).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int eperm;

static long call(const char *name, long nr, long a, long b, long c, long d, long e) {
    long r = syscall(nr, a, b, c, d, e, 0);
    if (r == -1 && errno == EPERM) {
        fprintf(stderr, "%s: EPERM\n", name);
        eperm++;
    }
    return r;
}
#define CALL(name, ...) call(#name, SYS_##name, __VA_ARGS__)
#define ARGS0 0, 0, 0, 0, 0

static void *thread_main(void *arg) {
    (void)arg;
    char buf[64];
    CALL(getrlimit, RLIMIT_NOFILE, (long)buf, 0, 0, 0);
    CALL(sched_getparam, 0, (long)buf, 0, 0, 0);
    CALL(ioprio_get, 1 /* IOPRIO_WHO_PROCESS */, 0, 0, 0, 0);
    return NULL;
}

static int grandchild(void) {
    char buf[512];
    CALL(statx, AT_FDCWD, (long)"/", 0, 0x7ff /* STATX_BASIC_STATS */, (long)buf);
    CALL(readlinkat, AT_FDCWD, (long)"/proc/self/exe", (long)buf, sizeof buf, 0);
    CALL(faccessat2, AT_FDCWD, (long)"/", R_OK, 0, 0);
    return eperm ? 1 : 0;
}

static void daemonize(const char *marker) {
    pid_t first = fork();
    if (first < 0) { perror("fork"); exit(2); }
    if (first > 0) { waitpid(first, NULL, 0); return; }
    if (CALL(setsid, ARGS0) < 0) _exit(3);
    pid_t second = fork();
    if (second != 0) _exit(second < 0 ? 4 : 0); /* the daemon is orphaned */
    usleep(1500 * 1000);
    int fd = open(marker, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CALL(syncfs, fd, 0, 0, 0, 0);
    CALL(fadvise64, fd, 0, 0, 0 /* POSIX_FADV_NORMAL */, 0);
    dprintf(fd, "daemon %s\n", eperm ? "eperm" : "ok");
    close(fd);
    _exit(0);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "grandchild") == 0) return grandchild();
    if (argc < 2) { fprintf(stderr, "usage: %s MARKER_FILE | grandchild\n", argv[0]); return 2; }

    char buf[4096];
    int fds[2];
    CALL(getcwd, (long)buf, sizeof buf, 0, 0, 0);
    CALL(uname, (long)buf, 0, 0, 0, 0);
    CALL(getrusage, 0, (long)buf, 0, 0, 0);
    CALL(times, (long)buf, 0, 0, 0, 0);
    CALL(getpgrp, ARGS0);
    CALL(getpriority, 0, 0, 0, 0, 0);
    CALL(sched_getscheduler, 0, 0, 0, 0, 0);
    CALL(sched_get_priority_max, 0, 0, 0, 0, 0);
    CALL(sched_get_priority_min, 0, 0, 0, 0, 0);
    CALL(getitimer, 0, (long)buf, 0, 0, 0);
    long old = CALL(umask, 022, 0, 0, 0, 0);
    CALL(umask, old, 0, 0, 0, 0);
    CALL(getresuid, (long)buf, (long)(buf + 8), (long)(buf + 16), 0, 0);
    CALL(getresgid, (long)buf, (long)(buf + 8), (long)(buf + 16), 0, 0);
    CALL(getgroups, 0, 0, 0, 0, 0);
    int cap_header[2] = {0x20080522, 0};
    CALL(capget, (long)cap_header, (long)buf, 0, 0, 0);
    CALL(sched_getaffinity, 0, 128, (long)buf, 0, 0);
    long tfd = CALL(timerfd_create, 1 /* CLOCK_MONOTONIC */, 0, 0, 0, 0);
    long efd = CALL(eventfd2, 0, 0, 0, 0, 0);
    long epfd = CALL(epoll_create1, 0, 0, 0, 0, 0);
    CALL(pipe2, (long)fds, 0, 0, 0, 0);
    long d1 = CALL(dup, fds[0], 0, 0, 0, 0);
    CALL(dup3, fds[1], 100, 0, 0, 0);
    long mfd = CALL(memfd_create, (long)"ground-truth", 0, 0, 0, 0);
    CALL(ftruncate, mfd, 8192, 0, 0, 0);
    CALL(flock, mfd, 2 /* LOCK_EX */, 0, 0, 0);
    CALL(fsync, mfd, 0, 0, 0, 0);
    CALL(fdatasync, mfd, 0, 0, 0, 0);
    CALL(lseek, mfd, 0, SEEK_SET, 0, 0);
    CALL(statfs, (long)"/", (long)buf, 0, 0, 0);
    CALL(fstatfs, mfd, (long)buf, 0, 0, 0);
    CALL(clock_getres, 1, (long)buf, 0, 0, 0);
    char *page = (char *)(((unsigned long)buf + 4095) & ~4095UL) - 4096;
    unsigned char vec[4];
    CALL(mincore, (long)page, 4096, (long)vec, 0, 0);
    CALL(madvise, (long)page, 4096, 0 /* MADV_NORMAL */, 0, 0);
    /* pthread_join only calls futex when the thread is still running, so a
     * recording may or may not see it; call it here so the set is fixed. */
    int word = 0;
    CALL(futex, (long)&word, 1 | 128 /* FUTEX_WAKE_PRIVATE */, 1, 0, 0);
    CALL(msync, (long)page, 4096, 4 /* MS_SYNC */, 0, 0);
    close(tfd); close(efd); close(epfd); close(d1); close(100); close(fds[0]); close(fds[1]); close(mfd);

    pthread_t t;
    if (pthread_create(&t, NULL, thread_main, NULL) != 0) { fprintf(stderr, "pthread_create failed\n"); return 2; }
    pthread_join(t, NULL);

    pid_t child = fork();
    if (child < 0) { perror("fork"); return 2; }
    if (child == 0) {
        CALL(setpgid, 0, 0, 0, 0, 0);
        CALL(getpgid, 0, 0, 0, 0, 0);
        CALL(alarm, 0, 0, 0, 0, 0);
        pid_t grand = fork();
        if (grand == 0) {
            execl("/proc/self/exe", argv[0], "grandchild", (char *)NULL);
            perror("execl");
            _exit(2);
        }
        int status = 0;
        waitpid(grand, &status, 0);
        _exit(eperm || !WIFEXITED(status) || WEXITSTATUS(status) != 0 ? 1 : 0);
    }
    int status = 0;
    waitpid(child, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) eperm++;

    daemonize(argv[1]);

    sleep(1);
    CALL(getcpu, (long)buf, (long)(buf + 8), 0, 0, 0);
    CALL(rt_sigpending, (long)buf, 8, 0, 0, 0);

    printf("ground truth %s\n", eperm ? "saw EPERM" : "ok");
    return eperm ? 1 : 0;
}
