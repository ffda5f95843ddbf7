#!/usr/bin/env python3
"""Derive recorder/data/syscall-descriptions.tsv (what `recorder explain` says a syscall
does) from the Linux man-pages project, so no description is written by hand.

Source: section 2 of Linux man-pages (Debian's `manpages-dev` package; the version is read
from the pages' .TH lines and written into the table's header).

1. The names are the first column of syscalls(2), the project's list of every Linux
   system call, plus every other page in man2 whose name libseccomp knows as a syscall
   on some architecture (syscalls(2) in 6.03 lacks a few newer ones, e.g. mount_setattr).
2. Each name's description is the NAME line of its own page, /usr/share/man/man2/NAME.2.gz
   (Debian installs an alias page such as pread64.2 as a symlink to pread.2), with troff
   escapes removed: "read \\- read from a file descriptor" gives "read from a file
   descriptor".
3. A name without a page of its own gets no row (`recorder explain` then says there is no
   man page description; it never makes one up). The one exception is a page that
   syscalls(2) itself points to in its Notes column ("See stat(2)"), which is used as is.

Needs Debian's python3-seccomp (run with /usr/bin/python3). Usage:
    /usr/bin/python3 tests/scripts/derive-syscall-descriptions.py > recorder/data/syscall-descriptions.tsv
"""

import gzip
import os
import re
import sys

MAN2 = "/usr/share/man/man2"


def libseccomp_knows(name):
    """Is `name` a syscall on some architecture, by libseccomp's tables (what runtimes use)?"""
    import seccomp

    for arch in ("X86_64", "X86", "X32", "AARCH64", "ARM", "RISCV64", "PPC64LE", "S390X", "MIPS64"):
        try:
            if seccomp.resolve_syscall(getattr(seccomp.Arch, arch), name) >= 0:
                return True
        except (ValueError, RuntimeError):
            continue
    return False


def other_pages():
    """man2 pages not in syscalls(2) that are syscalls by libseccomp's tables."""
    names = set()
    for entry in os.listdir(MAN2):
        if entry.endswith(".2.gz"):
            names.add(entry[: -len(".2.gz")])
    return {n for n in names if libseccomp_knows(n)}


def read_page(name):
    path = os.path.join(MAN2, name + ".2.gz")
    if not os.path.exists(path):
        return None
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:
        return f.read()


def plain(troff):
    """Troff text to plain text: font escapes, \\- and \\e, and quoted dashes."""
    text = re.sub(r"\\f[BIRP]|\\f\(..|\\f\[[A-Z]*\]", "", troff)
    text = text.replace("\\-", "-").replace("\\e", "\\").replace("\\(em", "--").replace("\\(aq", "'")
    text = text.replace("\\ ", " ").replace("\\&", "")
    return " ".join(text.split())


def title_and_name_line(page):
    """(page title from .TH, version from .TH, the NAME section's text)."""
    th = re.search(r'^\.TH\s+(\S+)\s+\S+\s+\S+\s+"([^"]*)"', page, re.M)
    lines = page.splitlines()
    name_text = []
    in_name = False
    for line in lines:
        if line.startswith(".SH"):
            if in_name:
                break
            in_name = line.split(None, 1)[1:] == ["NAME"]
            continue
        if in_name and not line.startswith('.\\"'):
            name_text.append(line)
    if not th or not name_text:
        return None
    return th.group(1), th.group(2), plain(" ".join(name_text))


def syscalls_table():
    """Every name in syscalls(2)'s table, with the page its Notes column points to."""
    page = read_page("syscalls")
    if page is None:
        sys.exit("no syscalls(2) page: install Debian's manpages-dev")
    table = page.split("\n.TS", 1)[1].split("\n.TE", 1)[0]
    names = {}
    # One entry starts with \fBname\fP(2); its Notes may continue over T{ ... T} lines.
    entries = re.split(r"\n(?=\\fB[A-Za-z0-9_]+\\fP\(2\))", table)
    for entry in entries:
        m = re.match(r"\\fB([A-Za-z0-9_]+)\\fP\(2\)", entry)
        if not m:
            continue
        see = re.search(r"See \\fB([A-Za-z0-9_]+)\\fP\(2\)", entry)
        names[m.group(1)] = see.group(1) if see else None
    return names


def main():
    rows = {}
    version = None
    names = syscalls_table()
    for extra in other_pages():
        names.setdefault(extra, None)
    for name, see in sorted(names.items()):
        page = read_page(name)
        shown_page = name
        if page is None and see is not None:
            page, shown_page = read_page(see), see
        if page is None:
            continue
        parsed = title_and_name_line(page)
        if parsed is None:
            continue
        title, page_version, name_line = parsed
        if " - " not in name_line:
            continue
        version = version or page_version
        description = name_line.split(" - ", 1)[1].strip().rstrip(".")
        rows[name] = (description, f"{title}(2)" if page is not None else f"{shown_page}(2)")
    print("# What each system call does: the NAME line of its page in section 2 of")
    print(f"# {version} (Debian 12 manpages-dev), derived by")
    print("# tests/scripts/derive-syscall-descriptions.py; not edited by hand. Names are the")
    print("# rows of syscalls(2) and the other man2 pages libseccomp knows as syscalls; a name")
    print("# without a page has no row.")
    print("# Columns (tab-separated): name, description, page it comes from.")
    for name, (description, page) in sorted(rows.items()):
        print(f"{name}\t{description}\t{page}")


if __name__ == "__main__":
    main()
