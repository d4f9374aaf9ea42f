"""The stack's api tier: GET / counts a visit in redis (INCR, spoken in RESP over a plain
socket, so nothing but python3 is needed) and answers {"hits": N} as JSON."""
import json
import os
import socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

REDIS = (os.environ.get("REDIS_HOST", "redis"), int(os.environ.get("REDIS_PORT", "6379")))


def incr(key):
    with socket.create_connection(REDIS, timeout=5) as s:
        s.sendall(f"*2\r\n$4\r\nINCR\r\n${len(key)}\r\n{key}\r\n".encode())
        reply = s.recv(64).decode()
    if not reply.startswith(":"):
        raise RuntimeError(f"redis answered {reply!r}")
    return int(reply[1:].strip())


class Api(BaseHTTPRequestHandler):
    def do_GET(self):
        try:
            body, code = json.dumps({"hits": incr("hits")}), 200
        except OSError as e:
            body, code = json.dumps({"error": str(e)}), 502
        self.send_response(code)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())


print("api listening on 8080", flush=True)
ThreadingHTTPServer(("0.0.0.0", 8080), Api).serve_forever()
