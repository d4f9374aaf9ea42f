# The conformance suite's program: one socket call per input line, one result per output line
# (JSON), so that the same sequence of calls can be made in a plain network namespace (the
# kernel decides: the reference) and under `sockswitch run`, and the answers compared.
#
# Start: repl.py ENV_JSON, where ENV_JSON maps address symbols to addresses
# ({"A4": "10.77.0.10", "lo6": "::1", ...}). Each input line is one call:
#   {"op": "socket", "s": "s1", "family": 4|6, "type": "tcp"|"udp"}
#   {"op": "setsockopt", "s": .., "opt": "reuseaddr"|"reuseport"|"v6only", "val": 0|1}
#   {"op": "setsockopt", "s": .., "opt": "sndtimeo"|"rcvtimeo", "val": MILLISECONDS}
#   {"op": "bind"|"connect"|"connectblock"|"sendto", "s": .., "addr": SYMBOL, "port": N | {"of": SOCKET}, ["data": ..]}
#   {"op": "listen"|"getsockname"|"getpeername"|"close"|"recv"|"recvfrom"|"send"|"shutdown", "s": .., ["data"]}
#   {"op": "listen", "s": .., ["backlog": N (16)]}
#   {"op": "accept", "s": .., "as": NEW_SOCKET}; "acceptblock": a plain blocking accept
#   {"op": "reply"|"connectpeer", "s": .., ["data"]}: sendto / connect to the sender of the
#     socket's last recvfrom, exactly as it came (what a UDP server answering a client does).
#   {"op": "recverr", "s": ..}: recvmsg(MSG_ERRQUEUE) on the socket as it is (blocking or not).
#   {"op": "socketargs", "family": N, "type": N, "protocol": N}: socket(2) with these numbers
#     as they are (libc, no check of Python's), closed at once.
#   {"op": "reset"}: close every socket.
# Each answer: {"ok": true, ...} or {"err": "ERRNO_NAME"}; addresses come back as symbols
# (or as text when no symbol has that address) with their port.
import ctypes, errno, json, os, select, signal, socket, struct, sys



def _alarm(*_):
    raise InterruptedError("blocked for 3 s")


signal.signal(signal.SIGALRM, _alarm)

ENV = json.loads(sys.argv[1])
BACK = {}
for sym, ip in ENV.items():
    BACK.setdefault(socket.inet_pton(socket.AF_INET6 if ":" in ip else socket.AF_INET, ip), sym)
FAM = {4: socket.AF_INET, 6: socket.AF_INET6}
OPTS = {
    "reuseaddr": (socket.SOL_SOCKET, socket.SO_REUSEADDR),
    "reuseport": (socket.SOL_SOCKET, socket.SO_REUSEPORT),
    "v6only": (socket.IPPROTO_IPV6, socket.IPV6_V6ONLY),
}
TIMEOUTS = {"sndtimeo": socket.SO_SNDTIMEO, "rcvtimeo": socket.SO_RCVTIMEO}
WAIT = 0.25
socks = {}
last_from = {}
LIBC = ctypes.CDLL(None, use_errno=True)


def sym(addr):
    if not addr:
        return None
    ip = addr[0]
    key = socket.inet_pton(socket.AF_INET6 if ":" in ip else socket.AF_INET, ip)
    return [BACK.get(key, ip), addr[1]]


def target(s, c):
    port = c["port"]
    if isinstance(port, dict):
        port = socks[port["of"]].getsockname()[1]
    ip = ENV[c["addr"]]
    if s.family == socket.AF_INET6:
        if ":" not in ip:
            ip = "::ffff:" + ip
        return (ip, port, 0, 0)
    return (ip, port)


def ready(s, write=False):
    r, w, _ = select.select([] if write else [s], [s] if write else [], [], WAIT)
    return bool(r or w)


def call(c):
    op = c["op"]
    if op == "reset":
        for s in socks.values():
            s.close()
        socks.clear()
        last_from.clear()
        return {"ok": True}
    if op == "socket":
        socks[c["s"]] = socket.socket(FAM[c["family"]], socket.SOCK_STREAM if c["type"] == "tcp" else socket.SOCK_DGRAM)
        return {"ok": True}
    if op == "socketargs":
        fd = LIBC.socket(c["family"], c["type"], c["protocol"])
        if fd < 0:
            raise OSError(ctypes.get_errno(), "socket")
        os.close(fd)
        return {"ok": True}
    s = socks[c["s"]]
    if op == "setsockopt" and c["opt"] in TIMEOUTS:
        ms = c["val"]
        s.setsockopt(socket.SOL_SOCKET, TIMEOUTS[c["opt"]], struct.pack("ll", ms // 1000, ms % 1000 * 1000))
        return {"ok": True}
    if op == "setsockopt":
        level, name = OPTS[c["opt"]]
        s.setsockopt(level, name, c["val"])
        return {"ok": True}
    if op == "bind":
        s.bind(target(s, c))
        return {"ok": True}
    if op == "listen":
        s.listen(c.get("backlog", 16))
        return {"ok": True}
    if op == "connect":
        s.settimeout(2)
        try:
            s.connect(target(s, c))
        finally:
            s.settimeout(None)
        return {"ok": True}
    if op == "connectblock":
        # A plain blocking connect (settimeout makes the fd non-blocking, which the kernel
        # answers differently afterwards: a second connect returns 0, not EISCONN).
        signal.alarm(3)
        try:
            s.connect(target(s, c))
        finally:
            signal.alarm(0)
        return {"ok": True}
    if op == "accept":
        if not ready(s):
            return {"err": "timeout"}
        conn, peer = s.accept()
        socks[c["as"]] = conn
        return {"ok": True, "peer": sym(peer)}
    if op == "acceptblock":
        signal.alarm(3)
        try:
            conn, peer = s.accept()
        finally:
            signal.alarm(0)
        socks[c["as"]] = conn
        return {"ok": True, "peer": sym(peer)}
    if op == "getsockname":
        return {"ok": True, "addr": sym(s.getsockname())}
    if op == "getpeername":
        return {"ok": True, "addr": sym(s.getpeername())}
    if op == "send":
        return {"ok": True, "n": s.send(c["data"].encode())}
    if op == "sendto":
        return {"ok": True, "n": s.sendto(c["data"].encode(), target(s, c))}
    if op == "recv":
        if not ready(s):
            return {"err": "timeout"}
        return {"ok": True, "data": s.recv(1000).decode()}
    if op == "recvfrom":
        if not ready(s):
            return {"err": "timeout"}
        data, frm = s.recvfrom(1000)
        last_from[c["s"]] = frm
        return {"ok": True, "data": data.decode(), "from": sym(frm)}
    if op == "reply":
        return {"ok": True, "n": s.sendto(c["data"].encode(), last_from[c["s"]])}
    if op == "connectpeer":
        s.connect(last_from[c["s"]])
        return {"ok": True}
    if op == "recverr":
        signal.alarm(3)  # a hang must not stop the suite: it answers EINTR instead
        try:
            data, anc, flags, frm = s.recvmsg(1000, 1000, socket.MSG_ERRQUEUE)
        finally:
            signal.alarm(0)
        return {"ok": True, "data": data.decode(errors="replace"), "from": sym(frm)}
    if op == "shutdown":
        s.shutdown(socket.SHUT_WR)
        return {"ok": True}
    if op == "close":
        s.close()
        del socks[c["s"]]
        return {"ok": True}
    raise ValueError("unknown op " + op)


print(json.dumps({"ok": True, "ready": True}), flush=True)
for line in sys.stdin:
    c = json.loads(line)
    try:
        r = call(c)
    except OSError as e:
        r = {"err": errno.errorcode.get(e.errno, str(e.errno)) if e.errno else type(e).__name__}
    except (KeyError, ValueError) as e:
        r = {"err": "usage: " + str(e)}
    print(json.dumps(r), flush=True)
