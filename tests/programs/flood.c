/*
 * flood N: N short-lived processes, then N short-lived threads, each making
 * the same set of distinct, harmless syscalls, as fast as the machine
 * allows. Every process is a fork event in the ring buffer; a reader that
 * cannot keep up (or is stopped) makes reservations fail. At most 64
 * processes or threads live at once. The calls are listed in
 * tests/tests/reliability/load.rs (FLOOD_CALLS); keep both in step.
 * Build: gcc -O2 -Wall -pthread.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static const long CALLS[] = {
    SYS_getpid,         SYS_getppid,       SYS_getuid,         SYS_geteuid,
    SYS_getgid,         SYS_getegid,       SYS_gettid,         SYS_getpgrp,
    SYS_getsid,         SYS_getpgid,       SYS_sched_yield,    SYS_sched_getscheduler,
    SYS_sched_getparam, SYS_getpriority,   SYS_times,          SYS_sysinfo,
    SYS_uname,          SYS_getcwd,        SYS_getrusage,      SYS_getrlimit,
    SYS_getitimer,      SYS_getcpu,        SYS_clock_getres,   SYS_gettimeofday,
    SYS_getgroups,      SYS_getresuid,     SYS_getresgid,      SYS_sched_getaffinity,
    SYS_ioprio_get,     SYS_rt_sigpending, SYS_capget,         SYS_sched_get_priority_max,
};
#define NCALLS (sizeof CALLS / sizeof CALLS[0])
#define BATCH 64

/* Null or zero arguments: each call fails harmlessly or reads only. */
static void calls(void) {
    for (unsigned i = 0; i < NCALLS; i++)
        syscall(CALLS[i], 0, 0, 0);
}

static void *thread_main(void *arg) {
    (void)arg;
    calls();
    return NULL;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 10000;
    for (long done = 0; done < n; done += BATCH) {
        long batch = n - done < BATCH ? n - done : BATCH;
        for (long i = 0; i < batch; i++) {
            pid_t pid = fork();
            if (pid < 0) {
                perror("fork");
                return 1;
            }
            if (pid == 0) {
                calls();
                _exit(0);
            }
        }
        for (long i = 0; i < batch; i++)
            if (wait(NULL) < 0) {
                perror("wait");
                return 1;
            }
    }
    pthread_t threads[BATCH];
    for (long done = 0; done < n; done += BATCH) {
        long batch = n - done < BATCH ? n - done : BATCH;
        for (long i = 0; i < batch; i++)
            if (pthread_create(&threads[i], NULL, thread_main, NULL) != 0) {
                fprintf(stderr, "pthread_create failed\n");
                return 1;
            }
        for (long i = 0; i < batch; i++)
            pthread_join(threads[i], NULL);
    }
    printf("flood ok %ld\n", n);
    return 0;
}
