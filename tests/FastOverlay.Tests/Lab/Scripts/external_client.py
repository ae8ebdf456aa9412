#!/usr/bin/env python3
"""A client outside the cluster, for the external port's namespace tests. Prints one JSON line.

connect HOST PORT TIMEOUT IFACE   TCP connect(); counts the RSTs from HOST:PORT seen on IFACE meanwhile
udpgso HOST PORT SEGMENT TOTAL    one UDP_SEGMENT (GSO) send of TOTAL bytes in SEGMENT-byte datagrams
tcpsend HOST PORT BYTES           connect, send BYTES bytes, close
"""
import json
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
SOL_UDP = 17
UDP_SEGMENT = 103


def rsts(tap, host, port):
    count = 0
    while True:
        try:
            frame = tap.recv(65535)
        except BlockingIOError:
            return count
        if len(frame) < 34 or frame[12:14] != b"\x08\x00" or frame[23] != 6:
            continue
        ihl = (frame[14] & 0x0F) * 4
        tcp = 14 + ihl
        source = socket.inet_ntoa(frame[26:30])
        sport = struct.unpack("!H", frame[tcp:tcp + 2])[0]
        if source == host and sport == port and frame[tcp + 13] & 0x04:
            count += 1


def connect(host, port, timeout, iface):
    tap = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    tap.bind((iface, 0))
    tap.setblocking(False)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect((host, port))
        result = "connected"
    except ConnectionRefusedError:
        result = "refused"
    except socket.timeout:
        result = "timeout"
    except OSError as e:
        result = "error %d" % e.errno
    s.close()
    time.sleep(0.2)
    return {"result": result, "rst": rsts(tap, host, port)}


def udpgso(host, port, segment, total):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(SOL_UDP, UDP_SEGMENT, segment)
    payload = bytes(i % 251 for i in range(total))
    return {"sent": s.sendto(payload, (host, port))}


def tcpsend(host, port, count):
    s = socket.create_connection((host, port), timeout=5)
    data = bytes(i % 251 for i in range(count))
    s.sendall(data)
    time.sleep(0.3)
    s.close()
    return {"sent": count}


def main():
    command, args = sys.argv[1], sys.argv[2:]
    if command == "connect":
        out = connect(args[0], int(args[1]), float(args[2]), args[3])
    elif command == "udpgso":
        out = udpgso(args[0], int(args[1]), int(args[2]), int(args[3]))
    elif command == "tcpsend":
        out = tcpsend(args[0], int(args[1]), int(args[2]))
    else:
        raise SystemExit("unknown command " + command)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
