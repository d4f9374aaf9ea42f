#!/usr/bin/env python3
# An app with many services, for the daemon_rss measure: run under `sockswitch run`, it
# opens TCP listeners on 0.0.0.0:FIRST, FIRST+1, ... Each listen() is trapped and registers
# one service with the daemon, the same way any server registers its port. It reads target
# totals from stdin, one per line, grows to each ("grow to N") and answers "ok N" (or
# "error N ERRNO"); it exits at EOF, closing everything. Usage: listeners.py FIRST_PORT
import errno, resource, socket, sys

first = int(sys.argv[1])
socks = []
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
want = 65536
resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard) if hard != resource.RLIM_INFINITY else want, hard))
print("ready", flush=True)
for line in sys.stdin:
    target = int(line)
    try:
        while len(socks) < target:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.bind(("0.0.0.0", first + len(socks) - 1))
            s.listen(8)
        print(f"ok {len(socks)}", flush=True)
    except OSError as e:
        print(f"error {len(socks)} {errno.errorcode.get(e.errno, e.errno)}", flush=True)
for s in socks:
    s.close()
