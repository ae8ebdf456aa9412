#!/usr/bin/env python3
"""Servers that say who they are and whom they saw, and clients that report each attempt, for the Services lab.

  serve NAME [--tcp-port 8080] [--udp-port 5353]
      TCP: sends "NAME clientip:port\\n" on accept, then echoes. UDP: answers each datagram with
      "NAME clientip:port" and, after a space, what the datagram carried (unless it was empty or "x").
      Prints "serving NAME ..." once both sockets are bound.
  tcp HOST PORT [--count N] [--timeout S]
      N connections one after another: each reads the greeting, sends a line and checks its echo.
  udp HOST PORT [--count N] [--interval S] [--timeout S] [--sport P] [--stamp] [--size B]
      N datagrams (0: until killed) on a connected socket, each waiting for its own answer (matched by a sequence
      number, so a late answer is never taken for the next one). --sport binds one fixed source port for all of
      them (the 5-tuple a stale conntrack entry would catch); without it each datagram has a socket of its own.
      --stamp prefixes each line with the send time (Unix seconds). --size pads each datagram to B bytes (over
      the MTU: sent, and echoed back, as IPv4 fragments); an answer whose padding came back changed is MISMATCH.
  hold HOST PORT --want NAME --count N --trigger FILE [--max-attempts M] [--timeout S]
      Connects until N connections greet with NAME (closing the others), prints "HOLDING ...", then echoes a line
      on every held connection, round after round, until FILE exists, then three more rounds. Prints
      "ECHO rounds=R ok=K failed=F" and exits 5 when any echo failed.
  http URL [--timeout S]
      One GET: prints "HTTP <status> <first line of the body>".

Each attempt prints one line: "NAME ip:port [...]" for an answer, else REFUSED (ECONNREFUSED: a RST, or an ICMP
port unreachable on a connected socket), TIMEOUT, or "ERROR <errno name>". The exit code is that of the first
failed attempt: 0 all answered, 2 REFUSED, 3 TIMEOUT, 4 ERROR, 5 echo mismatch.
"""
import argparse
import errno
import os
import socket
import sys
import threading
import time
import urllib.error
import urllib.request

CODES = {"OK": 0, "REFUSED": 2, "TIMEOUT": 3, "ERROR": 4, "MISMATCH": 5}


def out(line):
    print(line, flush=True)


def failure(e):
    """An exception as one of the outcome words."""
    if isinstance(e, ConnectionRefusedError):
        return "REFUSED"
    if isinstance(e, (socket.timeout, TimeoutError)):
        return "TIMEOUT"
    if isinstance(e, OSError) and e.errno is not None:
        return "ERROR " + errno.errorcode.get(e.errno, str(e.errno))
    return "ERROR " + type(e).__name__


def serve(a):
    def tcp():
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", a.tcp_port))
        s.listen(512)
        ready.set()
        while True:
            c, peer = s.accept()
            threading.Thread(target=echo, args=(c, peer), daemon=True).start()

    def echo(c, peer):
        try:
            c.sendall(f"{a.name} {peer[0]}:{peer[1]}\n".encode())
            while True:
                d = c.recv(4096)
                if not d:
                    break
                c.sendall(d)
        except OSError:
            pass
        finally:
            c.close()

    def udp():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("0.0.0.0", a.udp_port))
        ready.set()
        while True:
            d, peer = s.recvfrom(65535)
            text = d.decode(errors="replace").strip()
            extra = "" if text in ("", "x") else " " + text
            s.sendto(f"{a.name} {peer[0]}:{peer[1]}{extra}\n".encode(), peer)

    ready = threading.Event()
    threading.Thread(target=udp, daemon=True).start()
    ready.wait()
    ready.clear()
    threading.Thread(target=tcp, daemon=True).start()
    ready.wait()
    out(f"serving {a.name} tcp {a.tcp_port} udp {a.udp_port}")
    threading.Event().wait()


def read_line(sock, timeout):
    sock.settimeout(timeout)
    data = b""
    while not data.endswith(b"\n"):
        d = sock.recv(4096)
        if not d:
            raise ConnectionResetError(errno.ECONNRESET, "closed")
        data += d
    return data.decode(errors="replace").strip()


def tcp_once(host, port, timeout, probe):
    """One connection: the greeting, then one echoed line. Returns (outcome word, line to print)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            greeting = read_line(s, timeout)
            s.sendall(probe.encode() + b"\n")
            back = read_line(s, timeout)
            if back != probe:
                return "MISMATCH", f"MISMATCH {greeting} sent {probe!r} got {back!r}"
            return "OK", greeting
    except Exception as e:  # noqa: BLE001 - every failure is an outcome to report
        word = failure(e)
        return word.split()[0], word


def tcp(a):
    first = 0
    for i in range(a.count):
        word, line = tcp_once(a.host, a.port, a.timeout, f"probe {i}")
        out(line)
        if word != "OK" and first == 0:
            first = CODES[word]
    return first


def udp(a):
    first = 0
    fixed = None
    if a.sport:
        fixed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        fixed.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        fixed.bind(("0.0.0.0", a.sport))
        fixed.connect((a.host, a.port))
    i = 0
    next_send = time.monotonic()
    while a.count == 0 or i < a.count:
        s = fixed
        if s is None:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.connect((a.host, a.port))
        sent = time.time()
        seq = f"seq={i}"
        line = udp_once(s, seq, a.timeout, padding(a.size, seq))
        if fixed is None:
            s.close()
        word = line.split()[0] if line.split()[0] in CODES else "OK"
        if word != "OK" and first == 0:
            first = CODES[word]
        out(f"{sent:.3f} {line}" if a.stamp else line)
        i += 1
        next_send += a.interval
        time.sleep(max(0.0, next_send - time.monotonic()))
    return first


def padding(size, seq):
    """Filler that makes "FILLER seq" size bytes long (empty when size is 0): varied, so a shifted or lost piece shows."""
    n = size - len(seq) - 1
    return "".join(chr(ord("a") + (k * 7) % 26) for k in range(n)) if n > 0 else ""


def udp_once(s, seq, timeout, pad=""):
    """Sends seq (after pad), waits for the answer that carries it; answers to earlier datagrams are skipped."""
    deadline = time.monotonic() + timeout
    try:
        s.send(((pad + " ") if pad else "").encode() + seq.encode())
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return "TIMEOUT"
            s.settimeout(left)
            answer = s.recv(65535).decode(errors="replace").strip()
            parts = answer.split()
            if parts and parts[-1] == seq:
                if pad:
                    return " ".join(parts[:-2]) if len(parts) >= 4 and parts[-2] == pad else f"MISMATCH padding of {seq}"
                return " ".join(parts[:-1])
    except Exception as e:  # noqa: BLE001
        return failure(e)


def hold(a):
    held, others, attempts = [], {}, 0
    while len(held) < a.count and attempts < a.max_attempts:
        attempts += 1
        s = None
        try:
            s = socket.create_connection((a.host, a.port), timeout=a.timeout)
            name = read_line(s, a.timeout).split()[0]
        except Exception as e:  # noqa: BLE001
            out(f"connect {attempts}: {failure(e)}")
            if s is not None:
                s.close()
            continue
        if name == a.want:
            held.append(s)
        else:
            others[name] = others.get(name, 0) + 1
            s.close()
    summary = " ".join(f"{k}:{v}" for k, v in sorted(others.items()))
    if len(held) < a.count:
        out(f"SHORT held={len(held)} attempts={attempts} others={summary}")
        return CODES["TIMEOUT"]
    out(f"HOLDING {len(held)} attempts={attempts} others={summary}")

    rounds, ok, failed, extra = 0, 0, 0, None
    while extra is None or extra > 0:
        for i, s in enumerate(held):
            probe = f"round {rounds} conn {i}"
            try:
                s.sendall(probe.encode() + b"\n")
                back = read_line(s, a.timeout)
                if back == probe:
                    ok += 1
                    continue
                out(f"conn {i} round {rounds}: sent {probe!r} got {back!r}")
            except Exception as e:  # noqa: BLE001
                out(f"conn {i} round {rounds}: {failure(e)}")
            failed += 1
        rounds += 1
        if extra is None and os.path.exists(a.trigger):
            extra = 3
        elif extra is not None:
            extra -= 1
        time.sleep(0.1)
    out(f"ECHO rounds={rounds} ok={ok} failed={failed}")
    return CODES["MISMATCH"] if failed else 0


def http(a):
    try:
        with urllib.request.urlopen(a.url, timeout=a.timeout) as r:
            status, body = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read()
    except urllib.error.URLError as e:
        word = failure(e.reason) if isinstance(e.reason, Exception) else "ERROR " + str(e.reason)
        out(word)
        return CODES[word.split()[0]]
    except Exception as e:  # noqa: BLE001
        word = failure(e)
        out(word)
        return CODES[word.split()[0]]
    text = body.decode(errors="replace").strip().splitlines()
    out(f"HTTP {status} {text[0] if text else ''}")
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("name")
    s.add_argument("--tcp-port", type=int, default=8080)
    s.add_argument("--udp-port", type=int, default=5353)
    for name in ("tcp", "udp", "hold"):
        c = sub.add_parser(name)
        c.add_argument("host")
        c.add_argument("port", type=int)
        c.add_argument("--timeout", type=float, default=3.0)
        c.add_argument("--count", type=int, default=1)
        if name == "udp":
            c.add_argument("--interval", type=float, default=0.0)
            c.add_argument("--sport", type=int, default=0)
            c.add_argument("--stamp", action="store_true")
            c.add_argument("--size", type=int, default=0)
        if name == "hold":
            c.add_argument("--want", required=True)
            c.add_argument("--trigger", required=True)
            c.add_argument("--max-attempts", type=int, default=400)
    h = sub.add_parser("http")
    h.add_argument("url")
    h.add_argument("--timeout", type=float, default=3.0)
    a = p.parse_args()
    sys.exit({"serve": serve, "tcp": tcp, "udp": udp, "hold": hold, "http": http}[a.cmd](a) or 0)


if __name__ == "__main__":
    main()
