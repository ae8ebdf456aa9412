#!/usr/bin/env python3
"""Play a userspace VTEP (what FastOverlay is on node1) against a kernel flannel node: send ICMP echo requests
inside VXLAN exactly as flannel's kernel would send them (VNI 1, inner MACs local VTEP -> peer VTEP, UDP to port
8472 from a socket bound to our PublicIP:8472), and read the kernel's replies off the same socket. Standard library
only. Prints one JSON object: what was sent and every reply as decoded."""
import argparse
import json
import socket
import struct
import time


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def mac(text: str) -> bytes:
    return bytes(int(x, 16) for x in text.split(":"))


def mac_text(b: bytes) -> str:
    return ":".join(f"{x:02x}" for x in b)


def echo_frame(a, seq: int) -> bytes:
    payload = b"fastoverlay-lab-interop-" + bytes(range(8))
    icmp = struct.pack("!BBHHH", 8, 0, 0, a.ident, seq) + payload
    icmp = icmp[:2] + struct.pack("!H", checksum(icmp)) + icmp[4:]
    total = 20 + len(icmp)
    # TTL 63: the sending node has routed the packet once, as the kernel would have.
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 0x1000 + seq, 0x4000, 63, 1, 0,
                     socket.inet_aton(a.src_ip), socket.inet_aton(a.dst_ip))
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    eth = mac(a.peer_vtep_mac) + mac(a.local_vtep_mac) + b"\x08\x00"
    vxlan = struct.pack("!B3xI", 0x08, a.vni << 8)
    return vxlan + eth + ip + icmp


def decode(data: bytes, addr) -> dict:
    out = {"outer_src": addr[0], "outer_sport": addr[1], "length": len(data)}
    if len(data) < 8 + 14 + 20:
        out["error"] = "short"
        return out
    flags, vni_word = struct.unpack("!B3xI", data[:8])
    out.update(vxlan_flags=flags, vni=vni_word >> 8)
    eth = data[8:22]
    out.update(inner_dst_mac=mac_text(eth[0:6]), inner_src_mac=mac_text(eth[6:12]), ethertype=eth[12] << 8 | eth[13])
    ip = data[22:]
    ihl = (ip[0] & 0x0F) * 4
    out.update(src=socket.inet_ntoa(ip[12:16]), dst=socket.inet_ntoa(ip[16:20]), ttl=ip[8], proto=ip[9],
               ip_checksum_ok=checksum(ip[:ihl]) == 0)
    if ip[9] == 1 and len(ip) >= ihl + 8:
        t, c, _, ident, seq = struct.unpack("!BBHHH", ip[ihl:ihl + 8])
        out.update(icmp_type=t, icmp_code=c, icmp_id=ident, icmp_seq=seq)
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--local-ip", required=True)
    p.add_argument("--peer-ip", required=True)
    p.add_argument("--port", type=int, default=8472)
    p.add_argument("--vni", type=int, default=1)
    p.add_argument("--local-vtep-mac", required=True)
    p.add_argument("--peer-vtep-mac", required=True)
    p.add_argument("--src-ip", required=True)
    p.add_argument("--dst-ip", required=True)
    p.add_argument("--count", type=int, default=3)
    p.add_argument("--ident", type=int, default=0x4242)
    p.add_argument("--timeout", type=float, default=5.0)
    a = p.parse_args()

    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((a.local_ip, a.port))
    s.settimeout(0.2)
    replies, sent = [], 0
    deadline = time.monotonic() + a.timeout
    for seq in range(1, a.count + 1):
        s.sendto(echo_frame(a, seq), (a.peer_ip, a.port))
        sent += 1
        time.sleep(0.05)
    while time.monotonic() < deadline and sum(1 for r in replies if r.get("icmp_type") == 0) < a.count:
        try:
            data, addr = s.recvfrom(4096)
        except socket.timeout:
            continue
        replies.append(decode(data, addr))
    print(json.dumps({"sent": sent, "replies": replies}))


if __name__ == "__main__":
    main()
