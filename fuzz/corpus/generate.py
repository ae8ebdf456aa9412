#!/usr/bin/python3
"""Writes the seed corpus: real frames built with scapy (an implementation independent of FastOverlay's own
writers), addressed to the node the fuzz harness sets up (fuzz/FastOverlay.Fuzz/FuzzNode.cs):

  node1  public 172.31.77.1, subnet 10.244.1.0/24, gateway 10.244.1.1 / 0a:58:0a:f4:01:01, VTEP 0e:fd:00:00:01:00
  pod0   10.244.1.2 / 0a:58:0a:f4:01:02 (port 1, where pod-frame and arp inputs arrive), pod1 10.244.1.3
  node2  public 172.31.77.2, subnet 10.244.2.0/24, VTEP 0e:fd:00:00:02:00   (VNI 1, UDP 8472)
  node3  public 172.31.77.3, subnet 10.244.3.0/24, VTEP 0e:fd:00:00:03:00

Run from anywhere: /usr/bin/python3 fuzz/corpus/generate.py (Debian python3-scapy). Rewrites fuzz/corpus/{pod-frame,underlay,arp}/ in place.
Short frames are padded to the 60-byte Ethernet minimum, as a sender's NIC does.
"""
import os
import shutil

from scapy.all import ARP, Dot1Q, Ether, ICMP, IP, IPOption_RR, Raw, TCP, UDP, bind_layers, raw
from scapy.layers.vxlan import VXLAN

bind_layers(UDP, VXLAN, dport=8472)

GW_MAC, GW_IP, VTEP_IP = "0a:58:0a:f4:01:01", "10.244.1.1", "10.244.1.0"
POD0_MAC, POD0_IP = "0a:58:0a:f4:01:02", "10.244.1.2"
POD1_IP = "10.244.1.3"
NODE1_PUB, NODE1_VTEP, NODE1_UL = "172.31.77.1", "0e:fd:00:00:01:00", "52:54:00:00:00:01"
NODE2_PUB, NODE2_VTEP, NODE2_UL = "172.31.77.2", "0e:fd:00:00:02:00", "52:54:00:00:00:02"
NODE3_PUB, NODE3_VTEP = "172.31.77.3", "0e:fd:00:00:03:00"
BCAST = "ff:ff:ff:ff:ff:ff"


def pad(b):
    return b.ljust(60, b"\0")


def from_pod0(l3):
    return Ether(src=POD0_MAC, dst=GW_MAC) / l3


def arp(op, psrc, pdst, hwdst="00:00:00:00:00:00", dst=BCAST, hwsrc=POD0_MAC):
    return Ether(src=hwsrc, dst=dst) / ARP(op=op, hwsrc=hwsrc, psrc=psrc, hwdst=hwdst, pdst=pdst)


def vxlan(inner, src=NODE2_PUB, dport=8472, vni=1, flags=0x08, ul_src=NODE2_UL, udp_checksum=False, outer_extra=None):
    ip = IP(src=src, dst=NODE1_PUB, flags="DF", ttl=64)
    if outer_extra:
        ip = IP(src=src, dst=NODE1_PUB, ttl=64, **outer_extra)
    udp = UDP(sport=51234, dport=dport) if udp_checksum else UDP(sport=51234, dport=dport, chksum=0)
    return Ether(src=ul_src, dst=NODE1_UL) / ip / udp / VXLAN(flags=flags, vni=vni) / inner


def inner(dst_ip, l4, src_ip="10.244.2.9", src_vtep=NODE2_VTEP):
    return Ether(src=src_vtep, dst=NODE1_VTEP) / IP(src=src_ip, dst=dst_ip, ttl=64) / l4


def udp(payload=b"x" * 18, sport=40000, dport=5201):
    return UDP(sport=sport, dport=dport) / Raw(payload)


POD_FRAME = {
    "udp-to-pod1": from_pod0(IP(src=POD0_IP, dst=POD1_IP, flags="DF") / udp()),
    "udp-to-node2": from_pod0(IP(src=POD0_IP, dst="10.244.2.9", flags="DF") / udp()),
    "udp-to-node3": from_pod0(IP(src=POD0_IP, dst="10.244.3.7") / udp()),
    "udp-to-unresolved": from_pod0(IP(src=POD0_IP, dst="10.244.1.50") / udp()),
    "udp-no-route": from_pod0(IP(src=POD0_IP, dst="8.8.8.8") / udp()),
    "udp-ttl1-to-node2": from_pod0(IP(src=POD0_IP, dst="10.244.2.9", ttl=1) / udp()),
    "udp-too-big-df": from_pod0(IP(src=POD0_IP, dst="10.244.2.9", flags="DF") / udp(b"y" * 1472)),
    "vlan-udp-to-node2": Ether(src=POD0_MAC, dst=GW_MAC) / Dot1Q(vlan=7) / IP(src=POD0_IP, dst="10.244.2.9") / udp(),
    "qinq-udp": Ether(src=POD0_MAC, dst=GW_MAC) / Dot1Q(vlan=7) / Dot1Q(vlan=8) / IP(src=POD0_IP, dst=POD1_IP) / udp(),
    "ip-options-rr": from_pod0(IP(src=POD0_IP, dst="10.244.2.9", options=[IPOption_RR(routers=["0.0.0.0"] * 3)]) / udp()),
    "fragment-first": from_pod0(IP(src=POD0_IP, dst="10.244.2.9", flags="MF", id=77) / udp(b"z" * 40)),
    "fragment-last": from_pod0(IP(src=POD0_IP, dst="10.244.2.9", frag=6, id=77) / Raw(b"z" * 16)),
    "icmp-echo-gateway": from_pod0(IP(src=POD0_IP, dst=GW_IP) / ICMP(type=8, id=1, seq=1) / Raw(b"ping" * 8)),
    "icmp-echo-vtep": from_pod0(IP(src=POD0_IP, dst=VTEP_IP) / ICMP(type=8, id=1, seq=2) / Raw(b"ping" * 8)),
    "icmp-echo-pod1": from_pod0(IP(src=POD0_IP, dst=POD1_IP) / ICMP(type=8, id=1, seq=3)),
    "tcp-syn-to-node2": from_pod0(IP(src=POD0_IP, dst="10.244.2.9", flags="DF") / TCP(sport=40001, dport=80, flags="S")),
    "arp-request-gateway": arp(1, POD0_IP, GW_IP),
    "arp-reply-to-gateway": arp(2, POD0_IP, GW_IP, hwdst=GW_MAC, dst=GW_MAC),
    "arp-gratuitous": arp(1, POD0_IP, POD0_IP),
}

UNDERLAY = {
    "vxlan-udp-to-pod1": vxlan(inner(POD1_IP, udp())),
    "vxlan-icmp-echo-pod0": vxlan(inner(POD0_IP, ICMP(type=8, id=9, seq=1) / Raw(b"ping"))),
    "vxlan-icmp-echo-gateway": vxlan(inner(GW_IP, ICMP(type=8, id=9, seq=2) / Raw(b"ping"))),
    "vxlan-tcp-to-pod0": vxlan(inner(POD0_IP, TCP(sport=80, dport=40001, flags="SA"))),
    "vxlan-udp-checksum": vxlan(inner(POD1_IP, udp()), udp_checksum=True),
    "vxlan-iana-port": vxlan(inner(POD1_IP, udp()), dport=4789),
    "vxlan-vni-2": vxlan(inner(POD1_IP, udp()), vni=2),
    "vxlan-from-node3": vxlan(inner(POD1_IP, udp(), src_ip="10.244.3.7", src_vtep=NODE3_VTEP), src=NODE3_PUB),
    "vxlan-unknown-peer": vxlan(inner(POD1_IP, udp()), src="172.31.77.99"),
    "vxlan-to-node3-subnet": vxlan(inner("10.244.3.7", udp())),
    "vxlan-ttl1": vxlan(Ether(src=NODE2_VTEP, dst=NODE1_VTEP) / IP(src="10.244.2.9", dst=POD1_IP, ttl=1) / udp()),
    "vxlan-inner-vlan": vxlan(Ether(src=NODE2_VTEP, dst=NODE1_VTEP) / Dot1Q(vlan=3) / IP(src="10.244.2.9", dst=POD1_IP) / udp()),
    "vxlan-outer-vlan": Ether(src=NODE2_UL, dst=NODE1_UL) / Dot1Q(vlan=100) / IP(src=NODE2_PUB, dst=NODE1_PUB) / UDP(sport=51234, dport=8472, chksum=0) / VXLAN(vni=1) / inner(POD1_IP, udp()),
    "vxlan-outer-options": vxlan(inner(POD1_IP, udp()), outer_extra={"options": [IPOption_RR(routers=["0.0.0.0"])]}),
    "vxlan-outer-fragment": vxlan(inner(POD1_IP, udp()), outer_extra={"flags": "MF", "id": 5}),
    "vxlan-inner-arp": vxlan(Ether(src=NODE2_VTEP, dst=NODE1_VTEP) / ARP(op=1, hwsrc=NODE2_VTEP, psrc="10.244.2.0", pdst=VTEP_IP)),
    "plain-udp-to-node": Ether(src=NODE2_UL, dst=NODE1_UL) / IP(src=NODE2_PUB, dst=NODE1_PUB) / UDP(sport=5000, dport=53) / Raw(b"q" * 20),
}

ARP_FRAMES = {
    "request-gateway": arp(1, POD0_IP, GW_IP),
    "request-proxy": arp(1, POD0_IP, "10.244.1.50"),
    "request-pod1": arp(1, POD0_IP, POD1_IP),
    "request-outside-subnet": arp(1, POD0_IP, "10.9.9.9"),
    "reply-to-gateway": arp(2, POD0_IP, GW_IP, hwdst=GW_MAC, dst=GW_MAC),
    "gratuitous": arp(1, POD0_IP, POD0_IP),
    "gratuitous-reply": arp(2, POD0_IP, POD0_IP),
    "probe-dad": arp(1, "0.0.0.0", "10.244.1.60"),
    "claims-pod1": arp(2, POD1_IP, GW_IP, hwdst=GW_MAC, dst=GW_MAC),
    "new-neighbour": arp(1, "10.244.1.77", GW_IP, hwsrc="0a:58:0a:f4:01:4d"),
}


def reserved_bits_set(frame):
    """RFC 7348 s5: every bit but I in the flags, the 24 reserved bits and the last reserved byte set: a receiver
    must ignore them. Patched in the bytes, since scapy reads some of these bits as extensions (GPE, GBP)."""
    b = bytearray(raw(frame))
    b[42:46] = b"\xff\xab\xcd\xef"
    b[49] = 0x5A
    return bytes(b)


def write(target, frames):
    folder = os.path.join(os.path.dirname(os.path.abspath(__file__)), target)
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    for name, frame in frames.items():
        with open(os.path.join(folder, name + ".bin"), "wb") as f:
            f.write(pad(frame if isinstance(frame, bytes) else raw(frame)))
    print(f"{target}: {len(frames)} frames")


if __name__ == "__main__":
    UNDERLAY["vxlan-reserved-bits-set"] = reserved_bits_set(vxlan(inner(POD1_IP, udp())))
    write("pod-frame", POD_FRAME)
    write("underlay", UNDERLAY)
    write("arp", ARP_FRAMES)
