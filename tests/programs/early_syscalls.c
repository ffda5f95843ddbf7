/*
 * A container entrypoint whose distinctive syscalls all happen in its first
 * millisecond: getcpu, uname and sysinfo (through syscall(2), so neither glibc
 * nor the vDSO can hide one), then it sleeps argv[1] milliseconds (default
 * 3000) and exits 0. A recorder that attaches to the container late still has
 * to report the three calls.
 *
 * Exit codes: 10 + n when call n (0 getcpu, 1 uname, 2 sysinfo) failed with
 * EPERM (a seccomp profile denied it), 20 + n for any other failure.
 * Build: gcc -static -O2 -o early_syscalls early_syscalls.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

static int failed(int n) { return (errno == EPERM ? 10 : 20) + n; }

int main(int argc, char **argv) {
    unsigned cpu, node;
    struct utsname u;
    struct sysinfo si;
    if (syscall(SYS_getcpu, &cpu, &node, NULL) != 0) return failed(0);
    if (syscall(SYS_uname, &u) != 0) return failed(1);
    if (syscall(SYS_sysinfo, &si) != 0) return failed(2);

    long ms = argc > 1 ? strtol(argv[1], NULL, 10) : 3000;
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
    static const char done[] = "early_syscalls: done\n";
    if (write(1, done, sizeof done - 1) < 0) return 30;
    return 0;
}
