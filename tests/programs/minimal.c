/*
 * A program with no libc: its whole life is the syscalls below, so a
 * recording of it shows exactly what the recorder adds (execve) and nothing
 * else. Build: gcc -static -nostdlib -O2 [-DEXTRA=nr -DSLEEP_MS=n].
 */
static long sys3(long nr, long a, long b, long c) {
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return ret;
}

__attribute__((force_align_arg_pointer)) void _start(void) {
#ifdef EXTRA
    char buf[512];
    sys3(EXTRA, (long)buf, sizeof buf, 0);
#endif
#ifdef SLEEP_MS
    struct { long sec, nsec; } ts = { SLEEP_MS / 1000, (SLEEP_MS % 1000) * 1000000L };
    sys3(35 /* nanosleep */, (long)&ts, 0, 0);
#endif
    sys3(1 /* write */, 1, (long)"ok\n", 3);
    sys3(231 /* exit_group */, 0, 0, 0);
    for (;;) {}
}
