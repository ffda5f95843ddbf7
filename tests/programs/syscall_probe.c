#ifndef NR
#define NR 272 /* unshare */
#endif
/*
 * Makes one syscall (NR, default unshare) and reports through its exit status whether seccomp
 * denied it: 0 it succeeded, 1 it failed with EPERM, 2 any other failure.
 * No libc, so under a tight profile nothing else is needed but execve and
 * exit_group. The syscall is unshare(0): a no-op that always succeeds
 * unless a filter denies it, and one nginx never makes. Success is any
 * non-negative return.
 * Build: gcc -static -nostdlib -O2
 */
static long sys3(long nr, long a, long b, long c) {
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return ret;
}

__attribute__((force_align_arg_pointer)) void _start(void) {
    long r = sys3(NR, 0, 0, 0);
    long code = r >= 0 ? 0 : (r == -1 /* -EPERM */ ? 1 : 2);
    sys3(231 /* exit_group */, code, 0, 0);
    for (;;) {}
}
