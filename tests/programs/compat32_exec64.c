/*
 * The 64-bit program tests/programs/compat32.c execs: no libc, so its whole
 * life is execve's result plus the native x86_64 calls below. Several of
 * them share a number with a different ia32 call, and newfstatat exists
 * only on x86_64 (ia32 has fstatat64), so a recorder that books the exec'd
 * task under the wrong ABI shows up in the profile.
 *
 *   write 1, fstat 5, lseek 8, uname 63, getuid 102, arch_prctl 158,
 *   exit_group 231, newfstatat 262
 *
 * Exit status: 0 when no call failed with EPERM, 1 otherwise.
 * Build: gcc -static -nostdlib -O2 -o compat32_exec64 compat32_exec64.c
 * (no -m32; compat32.c's expected sets are in compat32.expected).
 */
static long sys4(long nr, long a, long b, long c, long d) {
    long ret;
    register long r10 __asm__("r10") = d;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10)
                     : "rcx", "r11", "memory");
    return ret;
}

#define EPERM_RET (-1L)
#define AT_FDCWD (-100L)
#define ARCH_GET_FS 0x1003

__attribute__((force_align_arg_pointer)) void _start(void) {
    char buf[512];
    unsigned long fs = 0;
    int eperm = 0;
    eperm += sys4(5 /* fstat */, 1, (long)buf, 0, 0) == EPERM_RET;
    eperm += sys4(262 /* newfstatat */, AT_FDCWD, (long)"/", (long)buf, 0) == EPERM_RET;
    eperm += sys4(8 /* lseek */, 1, 0, 1 /* SEEK_CUR */, 0) == EPERM_RET; /* ESPIPE on a pipe: fine */
    eperm += sys4(63 /* uname */, (long)buf, 0, 0, 0) == EPERM_RET;
    eperm += sys4(102 /* getuid */, 0, 0, 0, 0) == EPERM_RET;
    eperm += sys4(158 /* arch_prctl */, ARCH_GET_FS, (long)&fs, 0, 0) == EPERM_RET;
    static const char ok[] = "compat32_exec64: ok\n";
    static const char bad[] = "compat32_exec64: saw EPERM\n";
    if (eperm)
        sys4(1 /* write */, 2, (long)bad, sizeof bad - 1, 0);
    else
        sys4(1 /* write */, 1, (long)ok, sizeof ok - 1, 0);
    sys4(231 /* exit_group */, eperm ? 1 : 0, 0, 0, 0);
    for (;;) {}
}
