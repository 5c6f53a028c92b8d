#!/usr/bin/env python3
"""Types into the console of a kernel booted on QEMU (virt, or raspi4b) as a
person would, and checks what comes back.

With Debian's busybox in the initramfs, /init starts busybox `sh` (prompt
`aspen:~# `), which edits lines itself with the terminal in raw mode:

- an edited line (`echo abc<DEL>d`), and history (up arrow, Enter);
- a pipe, redirection into /tmp and back;
- ^C ends `sleep 100` (status 130) and the shell goes on;
- `ps` shows the processes, `free` and `/proc/meminfo` the memory, `ls /proc`
  the process directories;
- the dynamically linked busybox runs a pipeline;
- job control: ^Z stops the foreground job, `jobs`, `bg`, `kill -STOP`,
  `fg` and ^C, a background reader of the terminal stops by SIGTTIN, SIGKILL
  ends a stopped job;
- `exit`: /init starts a new shell, which reads the terminal.

Without busybox, /init's own shell (prompt `aspen# `), with the terminal's
line discipline in canonical mode:

- `echo abc<DEL>d<Enter>` prints `abd` (the erase is shown as `\\b \\b`);
- ^C while `/bin/fuzz` runs ends it with SIGINT and the shell goes on;
- ^U erases a line typed so far.

Usage: scripts/console-typing.py KERNEL INITRD [APPEND]
(Aspen: build/qemu-virt/Image build/initramfs.cpio; Linux: its vmlinuz,
the same initrd and APPEND "console=ttyAMA0 quiet"). The environment
variable MACHINE replaces the machine's QEMU arguments (default
"-M virt -cpu cortex-a72 -m 1G"; the Pi 4: "-M raspi4b -dtb DTB" with
build/rpi4/kernel8.img). Prints PASS or FAIL
for each check and `N passed, M failed` last; exits 0 only when all pass.
"""
import os
import select
import subprocess
import sys
import time

DEFAULT_MACHINE = "-M virt -cpu cortex-a72 -m 1G"
BOOT_TIMEOUT = 120
STEP_TIMEOUT = 20
# Pause between typed bytes, as a person types (and under the UART's FIFO).
KEY_PAUSE = 0.02


class Console:
    """QEMU with its serial port on stdin and stdout."""

    def __init__(self, kernel, initrd, append):
        self.qemu = subprocess.Popen(
            ["qemu-system-aarch64", *os.environ.get("MACHINE", DEFAULT_MACHINE).split(), "-nographic",
             "-no-reboot", "-kernel", kernel, "-initrd", initrd, "-append", append],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.seen = b""
        self.mark = 0

    def wait_for(self, pattern, timeout=STEP_TIMEOUT):
        """Whether `pattern` shows up in the output after the last mark."""
        end = time.time() + timeout
        while time.time() < end:
            if pattern in self.seen[self.mark:]:
                return True
            ready, _, _ = select.select([self.qemu.stdout], [], [], 0.2)
            if ready:
                chunk = os.read(self.qemu.stdout.fileno(), 4096)
                if not chunk:
                    break
                self.seen += chunk
        return pattern in self.seen[self.mark:]

    def wait_for_any(self, patterns, timeout):
        """Whether one of `patterns` shows up after the last mark."""
        end = time.time() + timeout
        while time.time() < end:
            if any(self.wait_for(p, 0.2) for p in patterns):
                return True
        return False

    def command(self, line, expect, timeout=STEP_TIMEOUT):
        """Types `line` and Enter; whether `expect` and then a prompt follow."""
        self.type(line + b"\r")
        return self.wait_for(expect, timeout) and self.wait_for(BUSYBOX_PROMPT, timeout)

    def type(self, keys):
        """Types `keys`; what is shown next is looked for from here."""
        self.mark = len(self.seen)
        for key in keys:
            self.qemu.stdin.write(bytes([key]))
            self.qemu.stdin.flush()
            time.sleep(KEY_PAUSE)

    def shown(self):
        """The output since the last mark."""
        return self.seen[self.mark:]

    def close(self):
        self.qemu.kill()
        self.qemu.wait()


BUSYBOX_PROMPT = b"aspen:~# "
ASPEN_PROMPT = b"aspen# "


def busybox_session(console, check):
    """Busybox sh: it edits lines itself (raw mode, its own echo)."""
    check("an edited line", console.command(b"echo abc\x7fd", b"\r\nabd\r\n"))
    console.type(b"echo history\r")
    console.wait_for(BUSYBOX_PROMPT)
    check("history: up arrow, Enter", console.command(b"\x1b[A", b"\r\nhistory\r\n"))
    check("a pipe", console.command(b"seq 1 100 | grep 7 | wc -l", b"\r\n19\r\n"))
    check("redirection to /tmp and back",
          console.command(b"echo typed >/tmp/typed; cat </tmp/typed", b"\r\ntyped\r\n"))
    console.type(b"sleep 100\r")
    time.sleep(2)
    console.type(b"\x03")
    ended = console.wait_for(BUSYBOX_PROMPT, 10)
    check("^C ends sleep 100", ended and console.command(b"echo status=$?", b"status=130\r\n"))
    check("ps shows init and the shell", console.command(b"ps", b"/init") and b" -sh\r\n" in console.shown())
    check("free", console.command(b"free", b"Mem:"))
    check("/proc/meminfo", console.command(b"cat /proc/meminfo | grep Mem", b"MemAvailable:"))
    check("ls /proc | head", console.command(b"ls /proc | head -n 3", b"\r\n1\r\n"))
    check("the dynamic busybox", console.command(b"busybox-dyn sh -c 'echo dyn | wc -c'", b"\r\n4\r\n"))
    # Job control: the terminal's ^Z, the shell's jobs, bg and fg.
    console.type(b"sleep 100\r")
    time.sleep(1)
    console.type(b"\x1a")
    check("^Z stops the foreground job", console.wait_for(b"Stopped") and console.wait_for(BUSYBOX_PROMPT))
    check("jobs lists it stopped", console.command(b"jobs", b"[1]+  Stopped                    sleep 100"))
    check("bg continues it in the background", console.command(b"bg", b"[1] sleep 100"))
    check("kill -STOP stops it again", console.command(b"kill -STOP %1; sleep 0.2; jobs", b"Stopped (signal)"))
    check("bg again: running", console.command(b"bg; jobs", b"Running                    sleep 100"))
    console.type(b"fg\r")
    time.sleep(1)
    console.type(b"\x03")
    ended = console.wait_for(b"^C") and console.wait_for(BUSYBOX_PROMPT)
    check("fg, then ^C ends it (SIGINT: 130)", ended and console.command(b"echo status=$?", b"status=130"))
    console.type(b"head -c 1 /dev/tty &\r")
    time.sleep(1)
    check("a background reader of the terminal stops (SIGTTIN)", console.command(b"jobs", b"Stopped (tty input)"))
    check("SIGKILL ends a stopped job", console.command(b"kill -KILL %1; sleep 0.2; jobs", b"Killed"))
    check("exit: /init starts a new shell", console.command(b"exit", b"starting a new one"))
    check("the new shell reads the terminal", console.command(b"echo again", b"\r\nagain\r\n"))


def aspen_shell_session(console, check):
    """Init's own shell: the terminal edits lines (canonical mode)."""
    console.type(b"echo abc\x7fd\r")
    check("a line edited by the terminal", console.wait_for(b"abc\x08 \x08d\r\nabd\r\naspen# "))
    console.type(b"run /bin/fuzz --iterations 100000000\r")
    time.sleep(3)
    console.type(b"\x03")
    check("^C ends the running program", console.wait_for(b"^C") and console.wait_for(b"signal=2]\r\naspen# "))
    console.type(b"echo x\x15echo still\r")
    check("^U erases the line; the shell survived ^C", console.wait_for(b"\r\nstill\r\naspen# "))


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    console = Console(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) == 4 else "")
    failures = 0
    passes = 0

    def check(name, passed):
        nonlocal failures, passes
        # The last screenful tells what went wrong; a runaway console need not all be shown.
        print(("PASS " if passed else "FAIL ") + name + ("" if passed else f": ...{console.shown()[-3000:]!r}"))
        failures += not passed
        passes += passed

    try:
        if not console.wait_for_any([BUSYBOX_PROMPT, ASPEN_PROMPT], BOOT_TIMEOUT):
            check("a shell's prompt", False)
            return 1
        if BUSYBOX_PROMPT in console.shown():
            busybox_session(console, check)
        else:
            print("console typing: no busybox shell (see `make initramfs`); /init's own shell")
            aspen_shell_session(console, check)
    finally:
        console.close()
        print(f"{passes} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
