/*
 * What the kernel itself asks of a process that does what recorder does, in
 * miniature and without recorder's own checks: with RLIMIT_MEMLOCK set to 0,
 * create a 16 MiB array map and a ring buffer (CAP_BPF), load a raw
 * tracepoint program (CAP_PERFMON on top: a tracing program type), attach it
 * to sys_enter. Prints one line per step, "NAME: ok" or "NAME: ERRNO_NAME",
 * and stops at the first failure. Exit 0 when every step worked.
 * Build: gcc -O2 -Wall -o bpf_caps bpf_caps.c
 */
#include <errno.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

static long bpf(int cmd, union bpf_attr *attr) {
    return syscall(SYS_bpf, cmd, attr, sizeof(*attr));
}

static int report(const char *step, long rc) {
    if (rc < 0) {
        printf("%s: %s\n", step, errno == EPERM ? "EPERM" : errno == EACCES ? "EACCES" : strerror(errno));
        return 1;
    }
    printf("%s: ok\n", step);
    return 0;
}

int main(void) {
    /* Memory for maps is charged to the memory cgroup (Linux 5.11+), not
     * to RLIMIT_MEMLOCK: with a limit of 0 this still works, so
     * CAP_SYS_RESOURCE (to raise the limit) is not needed. */
    struct rlimit none = {0, 0};
    if (report("memlock-limit-0", setrlimit(RLIMIT_MEMLOCK, &none))) return 1;

    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.map_type = BPF_MAP_TYPE_ARRAY;
    attr.key_size = 4;
    attr.value_size = 384;
    attr.max_entries = 16384 * 3; /* ~18 MiB, like the daemon's slot maps */
    long map = bpf(BPF_MAP_CREATE, &attr);
    if (report("map", map)) return 1;

    memset(&attr, 0, sizeof attr);
    attr.map_type = BPF_MAP_TYPE_RINGBUF;
    attr.max_entries = 256 * 1024;
    if (report("ringbuf", bpf(BPF_MAP_CREATE, &attr))) return 1;

    /* r0 = 0; exit */
    struct bpf_insn insns[] = {
        {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0, .imm = 0},
        {.code = BPF_JMP | BPF_EXIT},
    };
    memset(&attr, 0, sizeof attr);
    attr.prog_type = BPF_PROG_TYPE_RAW_TRACEPOINT;
    attr.insns = (unsigned long)insns;
    attr.insn_cnt = 2;
    attr.license = (unsigned long)"GPL";
    long prog = bpf(BPF_PROG_LOAD, &attr);
    if (report("raw-tracepoint-program", prog)) return 1;

    memset(&attr, 0, sizeof attr);
    attr.raw_tracepoint.name = (unsigned long)"sys_enter";
    attr.raw_tracepoint.prog_fd = prog;
    if (report("attach-sys_enter", bpf(BPF_RAW_TRACEPOINT_OPEN, &attr))) return 1;
    return 0;
}
