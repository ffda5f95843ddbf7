/*
 * A replica of a Deployment with known syscalls, for the daemon tests: one
 * image, and each replica's arguments choose its distinctive calls, so a
 * merge of replicas is observable.
 *
 *   replica CALLS FIFO
 *
 * At start, through syscall(2) (neither glibc nor the vDSO can hide one):
 * uname always, then getcpu if CALLS holds 'a' and sysinfo if it holds 'b'.
 * Then it writes "replica: ready" to stdout and blocks opening and reading
 * FIFO (a named pipe the test bind-mounts) until the test writes a line to
 * it, writes "replica: done" and exits 0: it runs exactly as long as the
 * test wants, with no timing in between.
 *
 * Exit codes: 10 + n when call n (0 getcpu, 1 uname, 2 sysinfo, 3 openat,
 * 4 read) failed with EPERM (a seccomp profile denied it), 20 + n for any
 * other failure, 2 for bad arguments.
 * Build: gcc -static -O2 -o replica replica.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <unistd.h>

static int failed(int n) { return (errno == EPERM ? 10 : 20) + n; }

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    unsigned cpu, node;
    struct utsname u;
    struct sysinfo si;
    if (syscall(SYS_uname, &u) != 0) return failed(1);
    if (strchr(argv[1], 'a') && syscall(SYS_getcpu, &cpu, &node, NULL) != 0) return failed(0);
    if (strchr(argv[1], 'b') && syscall(SYS_sysinfo, &si) != 0) return failed(2);

    static const char ready[] = "replica: ready\n";
    if (write(1, ready, sizeof ready - 1) < 0) return 30;
    int fd = syscall(SYS_openat, AT_FDCWD, argv[2], O_RDONLY | O_CLOEXEC);
    if (fd < 0) return failed(3);
    char buf[64];
    ssize_t n;
    while ((n = syscall(SYS_read, fd, buf, sizeof buf)) < 0 && errno == EINTR) {}
    if (n < 0) return failed(4);
    static const char done[] = "replica: done\n";
    if (write(1, done, sizeof done - 1) < 0) return 30;
    return 0;
}
