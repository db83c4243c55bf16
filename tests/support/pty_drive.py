#!/usr/bin/env python3
"""Drive a command through a real pseudo-terminal, like a person at a keyboard.

    pty_drive.py STEPS_JSON -- COMMAND [ARGS...]

STEPS_JSON is a list of [expect_regex, keys] pairs: wait (up to 20 s) until the screen text seen
since the previous step matches expect_regex (ANSI escapes stripped), then type keys ("\r" is
Enter, "\x1b[B" is arrow-down). After the last step the command runs to its end. Prints the
transcript to stderr (ANSI escapes stripped; raw with PTY_DRIVE_RAW=1) and exits with the
command's exit code (or 124 when an expectation times out). NO_COLOR is removed from the
command's environment; put `env NO_COLOR=1` before the command to set it.
"""
import json
import os
import pty
import re
import select
import sys
import time

ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Za-z0-9]|\r")


def main():
    steps = json.loads(sys.argv[1])
    argv = sys.argv[sys.argv.index("--") + 1:]
    pid, fd = pty.fork()
    if pid == 0:
        os.environ["TERM"] = "xterm"
        os.environ.pop("NO_COLOR", None)
        os.execvp(argv[0], argv)
    transcript = b""
    seen = b""

    def pump(timeout):
        nonlocal transcript, seen
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            return True
        try:
            data = os.read(fd, 4096)
        except OSError:
            return False
        if not data:
            return False
        transcript += data
        seen += data
        return True

    for expect, keys in steps:
        pattern = re.compile(expect.encode())
        deadline = time.time() + 20
        while not pattern.search(ANSI.sub(b"", seen)):
            if time.time() > deadline or not pump(0.1):
                sys.stderr.write(transcript.decode(errors="replace"))
                sys.stderr.write(f"\n[pty_drive] timed out waiting for {expect!r}\n")
                os.kill(pid, 9)
                sys.exit(124)
        seen = b""
        time.sleep(0.1)
        os.write(fd, keys.encode())
    deadline = time.time() + 120
    while pump(0.5):
        if time.time() > deadline:
            sys.stderr.write("\n[pty_drive] the command did not end within 120 s\n")
            os.kill(pid, 9)
            break
    _, status = os.waitpid(pid, 0)
    if os.environ.get("PTY_DRIVE_RAW") == "1":
        sys.stderr.write(transcript.decode(errors="replace"))
    else:
        sys.stderr.write(ANSI.sub(b"", transcript).decode(errors="replace"))
    sys.exit(os.waitstatus_to_exitcode(status))


if __name__ == "__main__":
    main()
