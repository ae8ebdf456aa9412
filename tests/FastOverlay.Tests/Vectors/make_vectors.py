#!/usr/bin/python3
"""Generates wire.txt: byte-exact packet vectors for the FastOverlay wire-format tests.

Every vector is bytes(pkt) of a scapy packet (Debian's python3-scapy), an implementation independent of
FastOverlay: scapy fills in lengths and checksums unless a field is set explicitly below. Output format,
one vector per line: "name hex". Lines starting with '#' are comments.

Run from the repository root:
    python3 tests/FastOverlay.Tests/Vectors/make_vectors.py > tests/FastOverlay.Tests/Vectors/wire.txt
"""
import os
import sys

try:
    from scapy.all import (ARP, ICMP, IP, UDP, VXLAN, Dot1AD, Dot1Q, Ether, IPOption_NOP, IPOption_Router_Alert,
                           IPOption_RR, Padding, Raw, conf)
    from scapy.utils import checksum
    import scapy
except ImportError:
    # A python3 first on PATH (pyenv, venv) may not see Debian's dist-packages; use the system one.
    if sys.executable != "/usr/bin/python3" and os.path.exists("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    raise

conf.verb = 0

POD1_IP, POD2_IP, GW_IP = "10.244.1.2", "10.244.1.3", "10.244.1.1"
REMOTE_POD_IP = "10.244.2.2"
POD1_MAC, POD2_MAC, GW_MAC = "0a:58:0a:f4:01:02", "0a:58:0a:f4:01:03", "0a:58:0a:f4:01:01"
NODE1_IP, NODE2_IP = "172.31.77.1", "172.31.77.2"
VTEP1_MAC, VTEP2_MAC = "0a:58:0a:f4:01:00", "0a:58:0a:f4:02:00"
NIC1_MAC, NIC2_MAC = "02:00:ac:1f:4d:01", "02:00:ac:1f:4d:02"
BCAST = "ff:ff:ff:ff:ff:ff"
ZERO_MAC = "00:00:00:00:00:00"

PAYLOAD18 = b"x" * 18
ECHO_PAYLOAD = bytes(range(0x20, 0x20 + 32))

vectors = []


def add(name, data):
    data = bytes(data)
    assert " " not in name and all(n != name for n, _ in vectors), name
    vectors.append((name, data))


def pod_udp(ttl=64, ident=1, payload=PAYLOAD18):
    return IP(src=POD1_IP, dst=POD2_IP, ttl=ttl, id=ident) / UDP(sport=40000, dport=5201) / Raw(payload)


# --- Ethernet / IPv4 / UDP -------------------------------------------------------------------------------------------
# 14 + 20 + 8 + 18 = 60 bytes: exactly the minimum frame, no padding.
add("eth_ipv4_udp", Ether(src=POD1_MAC, dst=GW_MAC) / pod_udp(ttl=64))
# The same packet after one hop's TTL decrement, with the checksum recomputed from scratch by scapy.
add("eth_ipv4_udp_ttl63", Ether(src=POD1_MAC, dst=GW_MAC) / pod_udp(ttl=63))
add("eth_ipv4_udp_ttl2", Ether(src=POD1_MAC, dst=GW_MAC) / pod_udp(ttl=2))
add("eth_ipv4_udp_ttl1", Ether(src=POD1_MAC, dst=GW_MAC) / pod_udp(ttl=1))
# Odd-length UDP payload: the UDP checksum covers a trailing byte padded with zero (RFC 1071 s4.1).
add("eth_ipv4_udp_odd", Ether(src=POD1_MAC, dst=GW_MAC) / pod_udp(payload=b"odd-length payload!"))
# A short datagram padded by the sender to 60 bytes: IPv4 total length (30) bounds the datagram, not the frame.
add("eth_ipv4_udp_padded", Ether(src=POD1_MAC, dst=GW_MAC) / pod_udp(payload=b"hi") / Padding(b"\x00" * 16))
# UDP without a checksum (0 is allowed over IPv4).
add("eth_ipv4_udp_nochecksum",
    Ether(src=POD1_MAC, dst=GW_MAC) / IP(src=POD1_IP, dst=POD2_IP, ttl=64, id=1)
    / UDP(sport=40000, dport=5201, chksum=0) / Raw(PAYLOAD18))
# DSCP/ECN set (tos 0xb8 = EF) and DF: fields Ipv4Header.Write can also produce.
add("eth_ipv4_udp_tos_df",
    Ether(src=POD1_MAC, dst=GW_MAC) / IP(src=POD1_IP, dst=POD2_IP, ttl=64, id=0xBEEF, tos=0xB8, flags="DF")
    / UDP(sport=40000, dport=5201) / Raw(PAYLOAD18))


def udp_zero_checksum_frame():
    """A datagram whose one's complement sum is 0xFFFF, so its checksum computes to 0 and is sent as 0xFFFF."""
    def frame(word):
        return Ether(src=POD1_MAC, dst=GW_MAC) / IP(src=POD1_IP, dst=POD2_IP, ttl=64, id=1) \
            / UDP(sport=40000, dport=5201) / Raw(b"zero" + word.to_bytes(2, "big"))
    # With the variable word 0 the checksum is c0 = ~sum0; putting c0 there makes the sum 0xFFFF.
    base = Ether(bytes(frame(0)))
    candidate = base[UDP].chksum
    for word in [candidate] + list(range(0x10000)):
        built = bytes(frame(word))
        if Ether(built)[UDP].chksum == 0xFFFF:
            return built
    raise AssertionError("no payload gives a zero UDP checksum")


add("eth_ipv4_udp_checksum_ffff", udp_zero_checksum_frame())

# --- 802.1Q ------------------------------------------------------------------------------------------------------------
add("vlan_ipv4_udp", Ether(src=POD1_MAC, dst=GW_MAC) / Dot1Q(vlan=100, prio=3) / pod_udp())
add("vlan_arp_request",
    Ether(src=POD1_MAC, dst=BCAST) / Dot1Q(vlan=100)
    / ARP(op=1, hwsrc=POD1_MAC, psrc=POD1_IP, hwdst=ZERO_MAC, pdst=GW_IP))
# Two 802.1Q tags, and an 802.1ad S-tag: both refused (UnsupportedEtherType).
add("qinq", Ether(src=POD1_MAC, dst=GW_MAC) / Dot1Q(vlan=100) / Dot1Q(vlan=200) / pod_udp())
add("qinq_8021ad", Ether(src=POD1_MAC, dst=GW_MAC, type=0x88A8) / Dot1AD(vlan=100) / Dot1Q(vlan=200) / pod_udp())
add("vlan_8021ad_inner", Ether(src=POD1_MAC, dst=GW_MAC) / Dot1Q(vlan=100, type=0x88A8) / Dot1Q(vlan=200) / pod_udp())
# Neither IPv4 nor ARP.
add("eth_ipv6_type", Ether(src=POD1_MAC, dst=GW_MAC, type=0x86DD) / Raw(b"\x60" + b"\x00" * 45))

# --- IPv4 options and fragments -----------------------------------------------------------------------------------------
# Record Route with room for two addresses (11 bytes) + EOL pad: IHL 8.
add("ipv4_options",
    Ether(src=POD1_MAC, dst=GW_MAC)
    / IP(src=POD1_IP, dst=POD2_IP, ttl=64, id=1, options=[IPOption_RR(routers=["0.0.0.0", "0.0.0.0"])])
    / UDP(sport=40000, dport=5201) / Raw(PAYLOAD18))
# Router Alert (4 bytes): IHL 6.
add("ipv4_options_ra",
    Ether(src=POD1_MAC, dst=GW_MAC)
    / IP(src=POD1_IP, dst=POD2_IP, ttl=64, id=1, options=[IPOption_Router_Alert()])
    / UDP(sport=40000, dport=5201) / Raw(PAYLOAD18))
# NOP padding up to the longest header, IHL 15 (60 bytes).
add("ipv4_options_ihl15",
    Ether(src=POD1_MAC, dst=GW_MAC)
    / IP(src=POD1_IP, dst=POD2_IP, ttl=64, id=1, options=[IPOption_NOP()] * 40)
    / UDP(sport=40000, dport=5201) / Raw(PAYLOAD18))
add("ipv4_fragment_first",
    Ether(src=POD1_MAC, dst=GW_MAC)
    / IP(src=POD1_IP, dst=POD2_IP, ttl=64, id=0x1111, flags="MF", frag=0)
    / UDP(sport=40000, dport=5201, len=1508, chksum=0x1234) / Raw(b"a" * 32))
add("ipv4_fragment_later",
    Ether(src=POD1_MAC, dst=GW_MAC)
    / IP(src=POD1_IP, dst=POD2_IP, ttl=64, id=0x1111, proto=17, frag=185) / Raw(b"b" * 32))

# --- ARP (padded to the 60-byte minimum frame, as ArpPacket.WriteFrame does) --------------------------------------------
ARP_PAD = Padding(b"\x00" * 18)
add("arp_request",
    Ether(src=POD1_MAC, dst=BCAST) / ARP(op=1, hwsrc=POD1_MAC, psrc=POD1_IP, hwdst=ZERO_MAC, pdst=GW_IP) / ARP_PAD)
add("arp_reply",
    Ether(src=GW_MAC, dst=POD1_MAC) / ARP(op=2, hwsrc=GW_MAC, psrc=GW_IP, hwdst=POD1_MAC, pdst=POD1_IP) / ARP_PAD)
add("arp_gratuitous",
    Ether(src=POD2_MAC, dst=BCAST) / ARP(op=1, hwsrc=POD2_MAC, psrc=POD2_IP, hwdst=ZERO_MAC, pdst=POD2_IP) / ARP_PAD)
# The same request without padding (42 bytes, as captured on a veth before padding).
add("arp_request_unpadded",
    Ether(src=POD1_MAC, dst=BCAST) / ARP(op=1, hwsrc=POD1_MAC, psrc=POD1_IP, hwdst=ZERO_MAC, pdst=GW_IP))
# Malformed: RARP opcode 3, a non-Ethernet hardware type, and an IPv6-sized protocol address.
add("arp_op3",
    Ether(src=POD1_MAC, dst=BCAST) / ARP(op=3, hwsrc=POD1_MAC, psrc=POD1_IP, hwdst=ZERO_MAC, pdst=GW_IP) / ARP_PAD)
add("arp_hwtype6",
    Ether(src=POD1_MAC, dst=BCAST)
    / ARP(hwtype=6, hwlen=6, op=1, hwsrc=bytes.fromhex(POD1_MAC.replace(":", "")), psrc=POD1_IP,
          hwdst=bytes(6), pdst=GW_IP) / ARP_PAD)
add("arp_plen16",
    Ether(src=POD1_MAC, dst=BCAST)
    / ARP(op=1, plen=16, hwsrc=POD1_MAC, psrc=POD1_IP, hwdst=ZERO_MAC, pdst=GW_IP) / ARP_PAD)

# --- ICMP ----------------------------------------------------------------------------------------------------------------
# A pod pings its gateway; the reply is what IcmpResponder makes of it: ICMP type 0 (same id, seq, payload),
# addresses swapped, TTL 64, IP id kept. MACs swapped too.
add("icmp_echo_request",
    Ether(src=POD1_MAC, dst=GW_MAC) / IP(src=POD1_IP, dst=GW_IP, ttl=64, id=0x4D2)
    / ICMP(type=8, code=0, id=0x1234, seq=1) / Raw(ECHO_PAYLOAD))
add("icmp_echo_reply",
    Ether(src=GW_MAC, dst=POD1_MAC) / IP(src=GW_IP, dst=POD1_IP, ttl=64, id=0x4D2)
    / ICMP(type=0, code=0, id=0x1234, seq=1) / Raw(ECHO_PAYLOAD))
# An echo request from a remote pod with a lower TTL (the reply is still sent with TTL 64), odd payload length.
add("icmp_echo_request_odd",
    Ether(src=POD1_MAC, dst=GW_MAC) / IP(src=REMOTE_POD_IP, dst=GW_IP, ttl=61, id=0x0102)
    / ICMP(type=8, code=0, id=0xFFFF, seq=0xFFFE) / Raw(b"odd ping payload"[:15]))
add("icmp_echo_reply_odd",
    Ether(src=GW_MAC, dst=POD1_MAC) / IP(src=GW_IP, dst=REMOTE_POD_IP, ttl=64, id=0x0102)
    / ICMP(type=0, code=0, id=0xFFFF, seq=0xFFFE) / Raw(b"odd ping payload"[:15]))

# ICMP errors as IcmpResponder builds them: IP id 0, no flags, TTL 64, from the gateway to the offender's source,
# quoting the offending IP header plus the first 8 bytes of its payload (RFC 792).
BIG_DF = IP(src=POD1_IP, dst=POD2_IP, ttl=64, id=7, flags="DF") / UDP(sport=40000, dport=5201) / Raw(b"x" * 1472)
add("big_df_datagram", BIG_DF)  # the offending datagram (IP layer on), 1500 bytes
add("icmp_frag_needed",
    Ether(src=GW_MAC, dst=POD1_MAC) / IP(src=GW_IP, dst=POD1_IP, ttl=64, id=0)
    / ICMP(type=3, code=4, nexthopmtu=1450) / Raw(bytes(BIG_DF)[:28]))
EXPIRING = IP(src=POD1_IP, dst=REMOTE_POD_IP, ttl=1, id=9) / UDP(sport=40000, dport=33434) / Raw(b"x" * 24)
add("expiring_datagram", EXPIRING)
add("icmp_time_exceeded",
    Ether(src=GW_MAC, dst=POD1_MAC) / IP(src=GW_IP, dst=POD1_IP, ttl=64, id=0)
    / ICMP(type=11, code=0) / Raw(bytes(EXPIRING)[:28]))
UNROUTABLE = IP(src=POD1_IP, dst="192.0.2.7", ttl=64, id=10, options=[IPOption_Router_Alert()]) \
    / UDP(sport=40000, dport=53) / Raw(b"q" * 12)
add("unroutable_datagram", UNROUTABLE)  # IHL 6: the quote is 24 + 8 bytes
add("icmp_net_unreachable",
    Ether(src=GW_MAC, dst=POD1_MAC) / IP(src=GW_IP, dst=POD1_IP, ttl=64, id=0)
    / ICMP(type=3, code=0) / Raw(bytes(UNROUTABLE)[:32]))
# Original shorter than header + 8: the quote is all of it.
SHORT = IP(src=POD1_IP, dst="192.0.2.7", ttl=64, id=11, proto=17) / Raw(b"abc")
add("short_datagram", SHORT)
add("icmp_net_unreachable_short",
    Ether(src=GW_MAC, dst=POD1_MAC) / IP(src=GW_IP, dst=POD1_IP, ttl=64, id=0)
    / ICMP(type=3, code=0) / Raw(bytes(SHORT)))

# --- VXLAN (flannel: Linux port 8472, VNI 1, outer DF, TTL 64, IP id 0) --------------------------------------------------


def inner_frame(payload=PAYLOAD18):
    return Ether(src=VTEP1_MAC, dst=VTEP2_MAC) / IP(src=POD1_IP, dst=REMOTE_POD_IP, ttl=63, id=1) \
        / UDP(sport=40000, dport=5201) / Raw(payload)


add("inner_frame", inner_frame())


def vxlan(vni=1, dport=8472, udp_checksum=False, flags=0x08, reserved1=0, reserved2=0):
    # UDP dport is always explicit: scapy's own VXLAN binding would otherwise pick the port.
    udp = UDP(sport=50000, dport=dport) if udp_checksum else UDP(sport=50000, dport=dport, chksum=0)
    return Ether(src=NIC1_MAC, dst=NIC2_MAC) / IP(src=NODE1_IP, dst=NODE2_IP, flags="DF", ttl=64, id=0) \
        / udp / VXLAN(vni=vni, flags=flags, reserved1=reserved1, reserved2=reserved2) / inner_frame()


add("vxlan_flannel", vxlan())
add("vxlan_udp_checksum", vxlan(udp_checksum=True))
add("vxlan_vni_16777215", vxlan(vni=0xFFFFFF))
add("vxlan_iana_port", vxlan(vni=4096, dport=4789))
# I flag clear: VxlanBadFlags. Reserved flag bits and fields set with I: accepted (ignored on receipt, RFC 7348
# s5). Scapy's flag bits 0x04 (GPE next protocol) and 0x80 (GBP) change its layout, so those two stay clear.
add("vxlan_no_i_flag", vxlan(flags=0x00))
add("vxlan_reserved_bits_set", vxlan(flags=0x7B, reserved1=0xFFFFFF, reserved2=0xFF))

# --- Internet checksum over raw data (scapy.utils.checksum) -------------------------------------------------------------
CSUM_DATA = {
    "rfc1071": bytes.fromhex("0001f203f4f5f6f7"),   # the RFC 1071 s3 example
    "odd1": b"\xab",
    "odd3": b"\x01\x02\x03",
    "odd17": bytes(range(1, 18)),
    "ff_bytes": b"\xff" * 6,
    "zeros": b"\x00" * 10,
    "mixed255": bytes((i * 37 + 11) & 0xFF for i in range(255)),
    "mixed1500": bytes((i * 131 + 7) & 0xFF for i in range(1500)),
}
for name, data in CSUM_DATA.items():
    add("csum_" + name + "_data", data)
    add("csum_" + name + "_value", checksum(data).to_bytes(2, "big"))

print("# Generated by tests/FastOverlay.Tests/Vectors/make_vectors.py with scapy " + scapy.VERSION + "; do not edit.")
print("# python3 tests/FastOverlay.Tests/Vectors/make_vectors.py > tests/FastOverlay.Tests/Vectors/wire.txt")
print("# Format: name hex (bytes(pkt) of a scapy packet; csum_*_value is scapy.utils.checksum of csum_*_data).")
for name, data in vectors:
    print(name + " " + data.hex())
