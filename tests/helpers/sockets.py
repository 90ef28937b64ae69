"""Listening TCP sockets of given processes, read from /proc (Linux): who listens where."""

from __future__ import annotations

import ipaddress
import os

_LISTEN = "0A"


def descendants(root: int) -> set[int]:
    """Pids of the processes below ``root``."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry))
    found, todo = set(), [root]
    while todo:
        for child in parents.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _address(hex_ip: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    raw = bytes.fromhex(hex_ip)
    # /proc/net/tcp* prints each 32-bit word in host (little-endian) order
    raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return ipaddress.ip_address(raw)


def listening_inodes() -> dict[str, tuple[str, int]]:
    """Socket inode -> (address, port) of every listening TCP socket of the machine."""
    out: dict[str, tuple[str, int]] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as fh:
            next(fh)
            for line in fh:
                cols = line.split()
                if cols[3] != _LISTEN:
                    continue
                ip, port = cols[1].split(":")
                out[cols[9]] = (str(_address(ip)), int(port, 16))
    return out


def listening(pids: set[int]) -> list[tuple[int, str, str, int]]:
    """(pid, command name, address, port) of each TCP socket that one of ``pids`` listens on."""
    inodes = listening_inodes()
    found = []
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
            with open(f"/proc/{pid}/comm") as fh:
                name = fh.read().strip()
        except OSError:  # gone, or not ours
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                found.append((pid, name, *inodes[target[8:-1]]))
    return found


def is_loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback
