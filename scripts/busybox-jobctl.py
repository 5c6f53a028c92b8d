#!/usr/bin/env python3
"""Job control with Debian's static busybox sh on the console of a kernel
booted on QEMU virt: from Aspen's /init shell it starts `busybox sh -i` and
types into it as a person would:

- `busybox sleep 100`, then ^Z: the shell says the job stopped (SIGTSTP from
  the terminal to the foreground group) and prompts again; `jobs` lists it;
- `bg` runs it in the background, `kill -STOP %1` stops it again
  (`jobs`: "Stopped (signal)"), `kill -CONT %1` and `jobs` after `bg`;
- `fg`, then ^C: the job ends by SIGINT and the shell (which took the
  terminal back) prompts;
- a background job that reads the terminal stops by SIGTTIN;
- `kill -KILL` ends a stopped job; `exit` goes back to /init's shell.

Usage: scripts/busybox-jobctl.py KERNEL [APPEND] (Aspen:
build/qemu-virt/Image after `make initramfs`; Linux: its vmlinuz and APPEND
"console=ttyAMA0 quiet"). BUSYBOX names the static busybox (default
~/.cache/aspen/pkg/busybox-static/bin/busybox); it is put at /t/busybox of a
copy of build/rootfs. Prints PASS or FAIL for each check and `N passed, M
failed` last; exits 0 only when all pass.
"""
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUSYBOX = os.environ.get("BUSYBOX", os.path.expanduser("~/.cache/aspen/pkg/busybox-static/bin/busybox"))


def load_console():
    """The `Console` of console-typing.py (QEMU with its serial port on a pipe)."""
    spec = importlib.util.spec_from_file_location("console_typing", os.path.join(ROOT, "scripts/console-typing.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_initrd(work):
    """build/rootfs with busybox at /t/busybox, packed into WORK/bb.cpio."""
    rootfs = os.path.join(work, "rootfs")
    shutil.copytree(os.path.join(ROOT, "build/rootfs"), rootfs, symlinks=True)
    os.makedirs(os.path.join(rootfs, "t"), exist_ok=True)
    shutil.copy(BUSYBOX, os.path.join(rootfs, "t/busybox"))
    out = os.path.join(work, "bb.cpio")
    subprocess.run([os.path.join(ROOT, "scripts/mk-initramfs.sh"), rootfs, out], check=True, stdout=subprocess.DEVNULL)
    return out


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    typing = load_console()
    work = tempfile.mkdtemp(prefix="busybox-jobctl.")
    console = typing.Console(sys.argv[1], make_initrd(work), sys.argv[2] if len(sys.argv) == 3 else "")
    failures = 0
    passes = 0

    def check(name, passed):
        nonlocal failures, passes
        print(("PASS " if passed else "FAIL ") + name + ("" if passed else f": {console.shown()!r}"))
        failures += not passed
        passes += passed

    def run(line, expect, name):
        console.type(line.encode() + b"\r")
        check(name, console.wait_for(expect.encode()))

    try:
        if not console.wait_for(b"aspen# ", typing.BOOT_TIMEOUT):
            check("/init's prompt", False)
            return 1
        console.type(b"run /t/busybox sh -i\r")
        if not console.wait_for(b"# "):
            check("busybox sh's prompt", False)
            return 1
        time.sleep(0.5)
        console.type(b"/t/busybox sleep 100\r")
        time.sleep(1)
        console.type(b"\x1a")
        check("^Z stops the foreground job", console.wait_for(b"Stopped") and console.wait_for(b"# "))
        run("jobs", "[1]+  Stopped                    /t/busybox sleep 100", "jobs lists it stopped")
        run("bg", "[1] /t/busybox sleep 100", "bg continues it in the background")
        # The job stops when it next runs: a moment later.
        run("kill -STOP %1; /t/busybox sleep 0.2; jobs", "Stopped (signal)", "kill -STOP stops it again")
        run("bg; jobs", "Running                    /t/busybox sleep 100", "bg again: running")
        console.type(b"fg\r")
        time.sleep(1)
        console.type(b"\x03")
        check("fg, then ^C ends it", console.wait_for(b"^C") and console.wait_for(b"# "))
        run("echo status=$?", "status=130", "the job ended by SIGINT (130)")
        console.type(b"/t/busybox head -c 1 /dev/tty &\r")
        time.sleep(1)
        run("jobs", "Stopped (tty input)", "a background job that reads the terminal stops by SIGTTIN")
        run("kill -KILL %1; /t/busybox sleep 0.2; jobs; echo listed", "Killed", "SIGKILL ends the stopped job")
        run("exit", "aspen# ", "exit goes back to /init's shell")
        run("echo back", "back\r\naspen# ", "/init's shell reads the terminal again")
    finally:
        console.close()
        shutil.rmtree(work, ignore_errors=True)
        print(f"{passes} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
