#!/usr/bin/env python3
"""Throw malformed traffic at a forwarder, from inside the lab only. Standard library only.

  garbage.py frames --iface eth0 --gw-mac MAC --src-mac MAC --src-ip IP --dst-ip IP [--rounds N]
      raw Ethernet frames through an AF_PACKET socket on a pod's eth0: runts, truncated and inconsistent IPv4
      headers, bad checksums, martian sources, TTL 1, broken ARP, stacked VLAN tags, unknown EtherTypes, random
      bytes, maximum-size random frames.
  garbage.py vxlan --local-ip IP --peer-ip IP [--port 8472] --peer-vtep-mac MAC --local-vtep-mac MAC [--rounds N]
      UDP datagrams to a VTEP's port from a known peer address: empty, short, I flag clear, unknown VNI, truncated
      and misaddressed inner frames.
Prints how many frames it sent."""
import argparse
import random
import socket
import struct


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def mac(text: str) -> bytes:
    return bytes(int(x, 16) for x in text.split(":"))


def ipv4(src, dst, payload=b"\0" * 26, proto=17, ttl=64, ver_ihl=0x45, total=None, good_checksum=True):
    total = 20 + len(payload) if total is None else total
    h = struct.pack("!BBHHHBBH4s4s", ver_ihl, 0, total, 1, 0, ttl, proto, 0, socket.inet_aton(src), socket.inet_aton(dst))
    c = checksum(h) if good_checksum else (checksum(h) ^ 0x5A5A) or 1
    return h[:10] + struct.pack("!H", c) + h[12:] + payload


def frames(a, rng):
    gw, me = mac(a.gw_mac), mac(a.src_mac)
    eth = gw + me
    udp = struct.pack("!HHHH", 1234, 5678, 8 + 18, 0) + b"x" * 18
    yield eth + b"\x08\x00"                                                  # Ethernet header only
    yield eth + b"\x08\x00" + b"\x45\x00"                                    # IPv4 cut after 2 bytes
    yield eth + b"\x08\x00" + ipv4(a.src_ip, a.dst_ip, ver_ihl=0x65)         # IP version 6 in an IPv4 frame
    yield eth + b"\x08\x00" + ipv4(a.src_ip, a.dst_ip, ver_ihl=0x43)         # IHL 3
    yield eth + b"\x08\x00" + ipv4(a.src_ip, a.dst_ip, ver_ihl=0x4F)         # IHL 15 beyond the packet
    yield eth + b"\x08\x00" + ipv4(a.src_ip, a.dst_ip, total=1000)           # total length past the frame
    yield eth + b"\x08\x00" + ipv4(a.src_ip, a.dst_ip, total=10)             # total length below the header
    yield eth + b"\x08\x00" + ipv4(a.src_ip, a.dst_ip, good_checksum=False)  # wrong header checksum
    yield eth + b"\x08\x00" + ipv4("0.0.0.0", a.dst_ip, udp)                 # martian sources
    yield eth + b"\x08\x00" + ipv4("255.255.255.255", a.dst_ip, udp)
    yield eth + b"\x08\x00" + ipv4("224.0.0.1", a.dst_ip, udp)
    yield eth + b"\x08\x00" + ipv4(a.src_ip, a.dst_ip, udp, ttl=1)           # TTL expires here
    yield eth + b"\x08\x00" + ipv4(a.src_ip, a.dst_ip, struct.pack("!HHHH", 1, 2, 400, 0))  # UDP length past the packet
    yield eth + b"\x08\x00" + ipv4(a.src_ip, "10.99.0.1", udp)               # outside the cluster network
    yield eth + b"\x08\x06" + b"\x00\x01\x08\x00"                            # ARP cut short
    yield b"\xff" * 6 + me + b"\x08\x06" + struct.pack("!HHBBH", 6, 0x0800, 6, 4, 1) + me + socket.inet_aton(a.src_ip) + b"\0" * 6 + socket.inet_aton("10.244.1.1")  # ARP, hardware type 6
    yield b"\xff" * 6 + me + b"\x08\x06" + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 9) + me + socket.inet_aton(a.src_ip) + b"\0" * 6 + socket.inet_aton("10.244.1.1")  # ARP opcode 9
    yield eth + b"\x81\x00\x00\x01\x81\x00\x00\x02\x08\x00" + ipv4(a.src_ip, a.dst_ip, udp)  # two VLAN tags
    yield eth + b"\x81\x00\x00\x01"                                          # VLAN tag, nothing after
    yield eth + b"\x88\xb5" + b"\0" * 46                                     # unknown EtherType
    yield eth + b"\x86\xdd" + b"\x60" + b"\0" * 45                           # IPv6
    yield b"\x01\x00\x5e\x00\x00\x01" + me + b"\x08\x00" + ipv4(a.src_ip, "224.0.0.1", udp)  # multicast
    yield b"\xff" * 6 + me + b"\x08\x00" + bytes(rng.randrange(256) for _ in range(46))   # broadcast garbage
    yield b"\x02\x00\x00\x00\x00\x99" + me + b"\x08\x00" + ipv4(a.src_ip, a.dst_ip, udp)  # not for the gateway
    yield eth + bytes(rng.randrange(256) for _ in range(rng.randrange(2, 120)))
    yield eth + b"\x08\x00" + bytes(rng.randrange(256) for _ in range(rng.randrange(0, 200)))
    yield eth + b"\x08\x00" + bytes(rng.randrange(256) for _ in range(a.mtu))     # maximum size, random


def vxlan(a, rng):
    inner_ok = mac(a.peer_vtep_mac) + mac(a.local_vtep_mac) + b"\x08\x00"
    hdr = struct.pack("!B3xI", 0x08, 1 << 8)
    yield b""
    yield b"\x08\x00"
    yield hdr                                                                   # VXLAN header only
    yield struct.pack("!B3xI", 0x00, 1 << 8) + inner_ok + b"\0" * 40            # I flag clear
    yield struct.pack("!B3xI", 0x08, 2 << 8) + inner_ok + b"\0" * 40            # VNI 2
    yield hdr + inner_ok[:10]                                                   # inner Ethernet cut short
    yield hdr + inner_ok                                                        # inner header only
    yield hdr + b"\x02\x00\x00\x00\x00\x77" + inner_ok[6:] + b"\0" * 40         # inner frame not for our VTEP
    yield hdr + inner_ok + bytes(rng.randrange(256) for _ in range(rng.randrange(0, 100)))
    yield bytes(rng.randrange(256) for _ in range(rng.randrange(0, 200)))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="kind", required=True)
    f = sub.add_parser("frames")
    f.add_argument("--iface", default="eth0")
    f.add_argument("--gw-mac", required=True)
    f.add_argument("--src-mac", required=True)
    f.add_argument("--src-ip", required=True)
    f.add_argument("--dst-ip", required=True)
    f.add_argument("--mtu", type=int, default=1450)
    f.add_argument("--rounds", type=int, default=50)
    v = sub.add_parser("vxlan")
    v.add_argument("--local-ip", required=True)
    v.add_argument("--peer-ip", required=True)
    v.add_argument("--port", type=int, default=8472)
    v.add_argument("--local-vtep-mac", required=True)
    v.add_argument("--peer-vtep-mac", required=True)
    v.add_argument("--rounds", type=int, default=50)
    a = p.parse_args()
    rng = random.Random(7348)
    sent = 0
    if a.kind == "frames":
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        s.bind((a.iface, 0))
        for _ in range(a.rounds):
            for frame in frames(a, rng):
                try:
                    s.send(frame)
                    sent += 1
                except OSError:
                    pass   # the kernel refuses some (shorter than an Ethernet header): fine
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((a.local_ip, 0))
        for _ in range(a.rounds):
            for datagram in vxlan(a, rng):
                s.sendto(datagram, (a.peer_ip, a.port))
                sent += 1
    print(f"sent {sent}")


if __name__ == "__main__":
    main()
