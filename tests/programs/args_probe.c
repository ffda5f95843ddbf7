/* --args ground truth: a known set of argument values.
 *
 * Every run: socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC), socket(AF_UNIX,
 * SOCK_DGRAM), fork() (clone without namespace flags) and mprotect without
 * PROT_EXEC. Printed as "<what>: ok".
 *
 * With "netlink", also socket(AF_NETLINK, SOCK_RAW) (a second recording
 * whose profile, merged with the first, allows it).
 *
 * With "probe", also the calls a profile recorded from a plain run must deny
 * on their arguments alone (the syscall itself is allowed), each printed as
 * "<what>: EPERM" or "<what>: ok":
 *   socket(AF_INET, SOCK_STREAM|SOCK_NONBLOCK)  allowed: flags are masked off
 *   socket(AF_INET, SOCK_DGRAM)                 a type not recorded
 *   socket(AF_NETLINK, SOCK_RAW)                a family not recorded
 *   socket(AF_PACKET, SOCK_RAW)
 *   socket(AF_VSOCK, SOCK_STREAM)
 *   clone(CLONE_NEWUSER|SIGCHLD)                a namespace flag
 *   mprotect(PROT_READ|PROT_EXEC)               PROT_EXEC not recorded
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

static void report(const char *what, long rc) {
    if (rc >= 0) {
        printf("%s: ok\n", what);
    } else if (errno == EPERM) {
        printf("%s: EPERM\n", what);
    } else {
        printf("%s: %s\n", what, strerror(errno));
    }
}

static void sock(const char *what, int family, int type) {
    int fd = socket(family, type, 0);
    report(what, fd);
    if (fd >= 0) {
        close(fd);
    }
}

int main(int argc, char **argv) {
    int probe = argc > 1 && strcmp(argv[1], "probe") == 0;
    setvbuf(stdout, NULL, _IONBF, 0);
    sock("inet stream", AF_INET, SOCK_STREAM | SOCK_CLOEXEC);
    sock("unix dgram", AF_UNIX, SOCK_DGRAM);

    pid_t child = fork();
    if (child == 0) {
        _exit(0);
    }
    report("fork", child);
    if (child > 0) {
        waitpid(child, NULL, 0);
    }

    long page = sysconf(_SC_PAGESIZE);
    void *map = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED) {
        perror("mmap");
        return 2;
    }
    report("mprotect read", mprotect(map, page, PROT_READ));
    if (argc > 1 && strcmp(argv[1], "netlink") == 0) {
        sock("netlink raw", AF_NETLINK, SOCK_RAW);
        return 0;
    }
    if (!probe) {
        return 0;
    }

    sock("inet stream nonblock", AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
    sock("inet dgram", AF_INET, SOCK_DGRAM);
    sock("netlink raw", AF_NETLINK, SOCK_RAW);
    sock("packet raw", AF_PACKET, SOCK_RAW);
    sock("vsock stream", AF_VSOCK, SOCK_STREAM);

    long rc = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, NULL, NULL, NULL, NULL);
    if (rc == 0) {
        syscall(SYS_exit, 0);
    }
    report("clone newuser", rc);
    if (rc > 0) {
        waitpid((pid_t)rc, NULL, 0);
    }
    report("mprotect exec", mprotect(map, page, PROT_READ | PROT_EXEC));
    return 0;
}
