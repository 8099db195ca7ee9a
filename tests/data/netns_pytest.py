"""Runs pytest inside a private network namespace that has only loopback.

TensorFlow's tf.data service servers listen on every interface and have
no option to bind 127.0.0.1 only, so their tests run where every
interface is loopback: `unshare --net python -m tests.data.netns_pytest
TEST_FILE` brings `lo` up, marks the environment and runs pytest on it.
"""

import fcntl
import os
import socket
import struct
import sys

SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
ENV = "KERASCNN_PRIVATE_NETNS"


def bring_loopback_up():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sH", b"lo", 0)
        flags = struct.unpack(
            "16sH", fcntl.ioctl(s, SIOCGIFFLAGS, request)[:18]
        )[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH", b"lo", flags | IFF_UP))


if __name__ == "__main__":
    import pytest

    bring_loopback_up()
    os.environ[ENV] = "1"
    sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", *sys.argv[1:]]))
