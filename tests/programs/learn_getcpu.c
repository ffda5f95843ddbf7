/* Enforce-and-learn ground truth: getcpu three times through syscall(2),
 * printing "getcpu: ok" or "getcpu: EPERM" for each (tests/tests/learn.rs). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void) {
    for (int i = 0; i < 3; i++) {
        unsigned cpu;
        long r = syscall(SYS_getcpu, &cpu, NULL, NULL);
        printf("getcpu: %s\n", r == 0 ? "ok" : errno == EPERM ? "EPERM" : "other");
    }
    return 0;
}
