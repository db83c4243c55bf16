#!/usr/bin/env python3
"""A FUSE filesystem whose files never answer a READ: a hung network or FUSE mount in miniature.

Usage: fuse_hang.py MOUNTPOINT NAME [NAME...]

Mounts a read-only directory at MOUNTPOINT holding one regular file per NAME. LOOKUP, GETATTR
and OPEN answer as any filesystem would; READ is taken from the kernel and never answered (as a
stalled sshfs takes the request and waits on its network). Prints "mounted" on stdout once the
kernel has initialised the connection. Ends (and with it the connection: the kernel fails every
waiting request with ENOTCONN) when killed or when the mount goes away.

The raw protocol, no library: include/uapi/linux/fuse.h (protocol 7.31 replies; the kernel accepts
any minor >= 7.23 with the 64-byte init reply), mount options from fs/fuse/inode.c
(fd, rootmode, user_id, group_id).
"""

import ctypes
import errno
import os
import struct
import sys

FUSE_LOOKUP, FUSE_FORGET, FUSE_GETATTR = 1, 2, 3
FUSE_OPEN, FUSE_READ, FUSE_RELEASE = 14, 15, 18
FUSE_INIT, FUSE_OPENDIR, FUSE_READDIR, FUSE_RELEASEDIR = 26, 27, 28, 29
FUSE_INTERRUPT, FUSE_DESTROY, FUSE_BATCH_FORGET = 36, 38, 42
NO_REPLY = {FUSE_FORGET, FUSE_BATCH_FORGET, FUSE_INTERRUPT}

IN_HEADER = struct.Struct("<IIQQIIIHH")  # len opcode unique nodeid uid gid pid extlen pad
OUT_HEADER = struct.Struct("<IiQ")  # len error unique
ATTR = struct.Struct("<QQQQQQIIIIIIIIII")  # fuse_attr, 88 bytes
ROOT = 1
CONTENT = b"--container-runtime-endpoint=/never/read\n"


def attr(ino, directory):
    mode = 0o040555 if directory else 0o100444
    size = 0 if directory else len(CONTENT)
    return ATTR.pack(ino, size, 1, 0, 0, 0, 0, 0, 0, mode, 2 if directory else 1, 0, 0, 0, 4096, 0)


def reply(fd, unique, error=0, body=b""):
    os.write(fd, OUT_HEADER.pack(OUT_HEADER.size + len(body), -error, unique) + body)


def main():
    mountpoint, names = sys.argv[1], [n.encode() for n in sys.argv[2:]]
    inodes = {name: ROOT + 1 + i for i, name in enumerate(names)}
    libc = ctypes.CDLL(None, use_errno=True)
    # Ends with the test that started it, even one killed outright (prctl(2) PR_SET_PDEATHSIG):
    # the connection ends with us, so nothing stays hung on the mount.
    pr_set_pdeathsig, sigkill = 1, 9
    libc.prctl(pr_set_pdeathsig, sigkill, 0, 0, 0)
    fd = os.open("/dev/fuse", os.O_RDWR)
    opts = f"fd={fd},rootmode=40000,user_id=0,group_id=0,ro".encode()
    ms_rdonly, ms_nosuid, ms_nodev = 1, 2, 4
    flags = ms_rdonly | ms_nosuid | ms_nodev
    if libc.mount(b"fuse_hang", mountpoint.encode(), b"fuse", flags, opts) != 0:
        e = ctypes.get_errno()
        sys.exit(f"mount {mountpoint}: {os.strerror(e)}")
    while True:
        try:
            data = os.read(fd, 1 << 20 | 4096)
        except OSError as e:
            if e.errno in (errno.ENODEV, errno.EBADF):  # unmounted
                return
            if e.errno in (errno.EINTR, errno.ENOENT):  # an interrupted request
                continue
            raise
        _, opcode, unique, nodeid, *_ = IN_HEADER.unpack_from(data)
        body = data[IN_HEADER.size :]
        if opcode in NO_REPLY:
            continue
        if opcode == FUSE_INIT:
            major, minor, readahead, flags = struct.unpack_from("<IIII", body)
            out = struct.pack("<IIIIHHIIHHII", 7, 31, readahead, 0, 16, 12, 4096, 1, 0, 0, 0, 0)
            reply(fd, unique, body=out + bytes(24))
            print("mounted", flush=True)
        elif opcode == FUSE_LOOKUP:
            name = body.split(b"\0", 1)[0]
            ino = inodes.get(name) if nodeid == ROOT else None
            if ino is None:
                reply(fd, unique, errno.ENOENT)
            else:
                entry = struct.pack("<QQQQII", ino, 0, 0, 0, 0, 0)
                reply(fd, unique, body=entry + attr(ino, False))
        elif opcode == FUSE_GETATTR:
            reply(fd, unique, body=struct.pack("<QII", 0, 0, 0) + attr(nodeid, nodeid == ROOT))
        elif opcode in (FUSE_OPEN, FUSE_OPENDIR):
            reply(fd, unique, body=struct.pack("<QII", 0, 0, 0))
        elif opcode == FUSE_READ:
            pass  # taken, never answered
        elif opcode == FUSE_READDIR:
            reply(fd, unique)  # an empty listing: end of directory
        elif opcode in (FUSE_RELEASE, FUSE_RELEASEDIR):
            reply(fd, unique)
        elif opcode == FUSE_DESTROY:
            reply(fd, unique)
            return
        else:
            reply(fd, unique, errno.ENOSYS)


if __name__ == "__main__":
    main()
