#!/usr/bin/env python3
"""Regenerates recorder/data/libc-syscalls/x86_64.tsv: for each exported libc
function, the x86_64 syscalls it may make, derived from glibc's and musl's
sources (docs/libc-syscalls.md says how and how far to trust it).

    generate.py --glibc GLIBC_SRC --musl MUSL_SRC > x86_64.tsv

GLIBC_SRC is a checkout of glibc at the tag the table names (glibc-2.36, what
Debian 12 ships), MUSL_SRC one of musl (v1.2.5). The output is deterministic:
the same sources give the same bytes.

Method, per libc:
1. Every source unit (.c, .h, .S) in the directories an x86_64 Linux build
   compiles, in sysdeps order (the first file of a name wins, as glibc's build
   picks it), gives: the names it defines, the syscalls it makes directly
   (glibc: INLINE_SYSCALL_CALL/INTERNAL_SYSCALL_CALL/SYSCALL_CANCEL/__NR_x/
   SYS_ify(x); musl: SYS_x), and the identifiers it calls.
2. glibc's syscalls.list files add the generated one-syscall wrappers.
3. A function's syscalls are its own plus those of the functions it calls,
   followed up to DEPTH calls deep, never into error and allocation paths
   (NOT_FOLLOWED): every libc function may allocate or abort, and listing
   mmap/brk/tgkill everywhere would say nothing.
4. Names are kept when they are x86_64 syscalls (arch-syscall.h), so the
   fallbacks for other architectures in `#ifdef __NR_x` branches drop out.
5. curated.tsv replaces the parse for the functions that start processes,
   threads and programs or load code (fork, posix_spawn, system, popen, exec*,
   daemon, dlopen, pthread_create, ...): the parse over-approximates them most
   and they matter most; each line names the source it was read from.
"""

import argparse
import os
import re
import sys

DEPTH = 3

# Helpers whose syscalls are every function's (allocation, fatal errors,
# cancellation bookkeeping, locking): not followed.
NOT_FOLLOWED = {
    "abort", "__abort", "malloc", "__libc_malloc", "free", "__libc_free", "calloc", "__libc_calloc",
    "realloc", "__libc_realloc", "__libc_fatal", "__libc_message", "__fortify_fail", "__assert_fail",
    "__chk_fail", "__stack_chk_fail", "__libc_dynarray_emplace_enlarge", "__libc_scratch_buffer_grow",
    "__libc_scratch_buffer_grow_preserve", "__libc_scratch_buffer_set_array_size", "__lll_lock_wait",
    "__lll_lock_wait_private", "__lll_lock_wake", "__lll_lock_wake_private", "__futex_abstimed_wait64",
    "__futex_abstimed_wait_cancelable64", "lll_futex_wake", "lll_futex_wait", "__pthread_mutex_lock",
    "__pthread_mutex_unlock", "__libc_lock_lock", "__libc_lock_unlock", "_IO_lock_lock", "_IO_lock_unlock",
    "__pthread_enable_asynccancel", "__pthread_disable_asynccancel", "__pthread_unwind",
    "__do_cancel", "__libc_alloca_cutoff", "__set_errno", "__syscall_error", "strerror", "__strerror_r",
    "_dl_signal_error", "_dl_signal_exception", "__libc_early_init", "printf", "fprintf", "__fxprintf",
    "__libc_single_threaded", "_IO_flockfile", "_IO_funlockfile", "__lll_trylock", "qsort", "__qsort_r",
    "__mmap", "mmap", "__munmap", "munmap", "sbrk", "__sbrk", "brk", "__brk", "dcgettext", "__dcgettext",
    "_", "gettext", "__libc_dlopen_mode", "__nss_database_get", "__nss_module_load", "__nss_configure_lookup",
    "___pthread_mutex_lock", "___pthread_mutex_unlock", "__pthread_mutex_lock_full", "exit", "_exit",
    "__libc_start_call_main", "__call_tls_dtors", "__run_exit_handlers",
}

GLIBC_SYSDEPS = [
    "sysdeps/unix/sysv/linux/x86_64/64", "sysdeps/unix/sysv/linux/x86_64", "sysdeps/unix/sysv/linux/x86",
    "sysdeps/unix/sysv/linux/wordsize-64", "sysdeps/unix/sysv/linux", "sysdeps/nptl", "sysdeps/unix",
    "sysdeps/posix", "sysdeps/x86_64",
]
GLIBC_GENERIC = [
    "nptl", "posix", "io", "misc", "socket", "stdlib", "libio", "signal", "time", "dirent", "login",
    "resolv", "dlfcn", "termios", "sysvipc", "inet", "rt", "pwd", "grp", "nss", "stdio-common", "string",
]
GLIBC_LISTS = [
    "sysdeps/unix/syscalls.list", "sysdeps/unix/sysv/linux/syscalls.list",
    "sysdeps/unix/sysv/linux/wordsize-64/syscalls.list", "sysdeps/unix/sysv/linux/x86_64/syscalls.list",
]

COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)
GLIBC_SYSCALL = re.compile(
    r"\b(?:INLINE|INTERNAL)_(?:V?SYSCALL)(?:_CALL)?\s*\(\s*(\w+)|\bSYSCALL_CANCEL\s*\(\s*(\w+)"
    r"|\b__NR_(\w+)|\bSYS_ify\s*\(\s*(\w+)\s*\)|\bINLINE_SYSCALL_ERROR_RETURN_VALUE\b(?!)")
MUSL_SYSCALL = re.compile(r"\bSYS_(\w+)")
ALIAS = re.compile(r"\b(?:weak_alias|strong_alias|libc_hidden_def|libc_hidden_weak|hidden_def|hidden_weak"
                   r"|libc_hidden_ver|versioned_symbol|compat_symbol|weak_function|libc_sunrpc_symbol)"
                   r"\s*\(([^)]*)\)")
DEFINITION = re.compile(r"^(?:[A-Za-z_][\w \t\*]*?[\s\*])?([A-Za-z_]\w*)\s*\((?:[^;{}()]|\([^;{}()]*\))*\)\s*(?:__THROW\s*)?\{", re.M)
ENTRY = re.compile(r"\b(?:ENTRY|ENTRY_P|PSEUDO|PSEUDO_NOERRNO)\s*\(\s*(\w+)")
# A prototype (`extern int __foo (int);`, `void bar (void) attribute_hidden;`)
# declares, it does not call: removed before calls are collected.
PROTOTYPE = re.compile(r"^[ \t]*(?!return\b|else\b|case\b|goto\b)(?:[A-Za-z_]\w*[ \t\*]+)+\**[A-Za-z_]\w*\s*"
                       r"\((?:[^;{}()]|\([^;{}()]*\))*\)[^;{}=]*;", re.M)
CALL = re.compile(r"\b([A-Za-z_]\w*)\s*\(")
KEYWORDS = {"if", "while", "for", "switch", "return", "sizeof", "defined", "__attribute__", "__typeof",
            "typeof", "offsetof", "__builtin_expect", "__glibc_unlikely", "__glibc_likely", "do", "void", "int",
            "char", "long", "short", "unsigned", "signed", "const", "static", "struct", "union", "enum", "inline",
            "extern", "register", "volatile", "bool", "size_t", "ssize_t"}


def syscall_table(path, prefix):
    names = set()
    with open(path) as f:
        for line in f:
            m = re.match(r"#define\s+" + prefix + r"(\w+)\s+", line)
            if m:
                names.add(m.group(1))
    return names


class Unit:
    def __init__(self, path, text, syscall_re):
        self.path = path
        text = COMMENT.sub(" ", text)
        self.syscalls = set()
        for m in syscall_re.finditer(text):
            self.syscalls.add(next(g for g in m.groups() if g))
        self.defines = set(DEFINITION.findall(text)) | set(ENTRY.findall(text))
        for m in ALIAS.finditer(text):
            for arg in m.group(1).split(","):
                arg = arg.strip()
                if re.fullmatch(r"[A-Za-z_]\w*", arg) and arg != "libc":
                    self.defines.add(arg)
        base, ext = os.path.splitext(os.path.basename(path))
        # A header is named by what it defines; a .c or .S file also by its name.
        if ext != ".h" and re.fullmatch(r"[A-Za-z_]\w*", base):
            self.defines.add(base)
        self.defines = {d for d in self.defines - KEYWORDS if not d.isupper() and not ALIAS.match(d + " (")}
        # ALL_CAPS names are macros; programs built from the tree (main) are not libc.
        body = PROTOTYPE.sub(" ", text)
        self.calls = {c for c in CALL.findall(body) if c not in KEYWORDS and not c.isupper()} - self.defines
        self.program = "main" in self.defines


def collect(root, dirs, exts, syscall_re, recurse):
    units, seen = [], set()
    for d in dirs:
        top = os.path.join(root, d)
        if not os.path.isdir(top):
            continue
        walk = os.walk(top) if recurse else [(top, [], sorted(os.listdir(top)))]
        for dirpath, dirnames, files in walk:
            dirnames.sort()
            if recurse and dirpath != top and ("/tst" in dirpath or "/test" in dirpath):
                continue
            for name in sorted(files):
                if not name.endswith(exts) or name.startswith("tst-") or name.startswith("test-"):
                    continue
                rel = os.path.relpath(os.path.join(dirpath, name), root)
                key = name if rel.startswith("sysdeps") or not recurse else rel
                if key in seen:
                    continue
                seen.add(key)
                with open(os.path.join(dirpath, name), errors="replace") as f:
                    unit = Unit(rel, f.read(), syscall_re)
                if not unit.program:
                    units.append(unit)
    return units


def closure(units, valid):
    by_name = {}
    for u in units:
        for n in u.defines:
            by_name.setdefault(n, []).append(u)
    memo = {}

    def of(unit, depth, stack):
        key = (unit.path, depth)
        if key in memo:
            return memo[key]
        out = {s for s in unit.syscalls if s in valid}
        if depth > 0:
            for c in sorted(unit.calls):
                if c in NOT_FOLLOWED:
                    continue
                for callee in by_name.get(c, []):
                    if callee.path in stack:
                        continue
                    out |= of(callee, depth - 1, stack | {callee.path})
        memo[key] = out
        return out

    result = {}
    for name, us in by_name.items():
        if name.startswith("_") or name in NOT_FOLLOWED:
            continue
        calls = set()
        for u in us:
            calls |= of(u, DEPTH, {u.path})
        if calls:
            result[name] = calls
    return result


def glibc(root):
    valid = syscall_table(os.path.join(root, "sysdeps/unix/sysv/linux/x86_64/64/arch-syscall.h"), "__NR_")
    units = collect(root, GLIBC_SYSDEPS, (".c", ".h", ".S"), GLIBC_SYSCALL, False)
    units += collect(root, GLIBC_GENERIC, (".c", ".h", ".S"), GLIBC_SYSCALL, True)
    table = closure(units, valid)
    wrappers = {}
    for lst in GLIBC_LISTS:
        with open(os.path.join(root, lst)) as f:
            for line in f:
                fields = line.split()
                if len(fields) < 5 or line.startswith("#"):
                    continue
                syscall, names = fields[2], fields[4:]
                for n in names:
                    n = n.split("@")[0]
                    wrappers[n] = syscall
    for n, s in wrappers.items():
        if s in valid and not n.startswith("_"):
            table[n] = {s}
    return table


def musl(root):
    valid = syscall_table(os.path.join(root, "arch/x86_64/bits/syscall.h.in"), "__NR_")
    src = os.path.join(root, "src")
    dirs = sorted(os.listdir(src))
    # x86_64 overrides first, then the generic files.
    units = collect(src, [os.path.join(d, "x86_64") for d in dirs], (".c", ".s", ".S"), MUSL_SYSCALL, False)
    # Headers are left out: src/internal/syscall.h names every SYS_x fallback.
    units += collect(src, dirs, (".c",), MUSL_SYSCALL, False)
    return closure(units, valid)


def curated(path):
    out = {}
    with open(path) as f:
        for line in f:
            if not line.strip() or line.startswith("#"):
                continue
            name, calls = line.split("\t")[:2]
            out[name] = set(calls.split(","))
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--glibc", required=True)
    p.add_argument("--musl", required=True)
    args = p.parse_args()
    g, m = glibc(args.glibc), musl(args.musl)
    c = curated(os.path.join(os.path.dirname(os.path.abspath(__file__)), "curated.tsv"))
    out = sys.stdout
    out.write("# function\tsyscalls (x86_64 names)\tsources\n")
    out.write("# Generated by generate.py from glibc-2.36 and musl v1.2.5 plus curated.tsv; do not edit.\n")
    for name in sorted(set(g) | set(m) | set(c)):
        # A curated line replaces what the parse found: it is read from the
        # sources by hand, where the parse over-approximates most.
        if name in c:
            calls, sources = c[name], ["curated"]
        else:
            calls = g.get(name, set()) | m.get(name, set())
            sources = [s for s, t in (("glibc", g), ("musl", m)) if name in t]
        out.write(f"{name}\t{','.join(sorted(calls))}\t{','.join(sources)}\n")


if __name__ == "__main__":
    main()
