"""The stack's web tier: GET / asks the api tier (by name, http://api:8080/) and answers a
line of text with the visit count."""
import json
import os
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

API = os.environ.get("API_URL", "http://api:8080/")
# Straight to the api tier, whatever proxy the environment names.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Web(BaseHTTPRequestHandler):
    def do_GET(self):
        try:
            with OPENER.open(API, timeout=5) as r:
                body, code = f"hello from web; visits: {json.load(r)['hits']}\n", 200
        except OSError as e:
            body, code = f"the api tier is not reachable: {e}\n", 502
        self.send_response(code)
        self.send_header("content-type", "text/plain")
        self.end_headers()
        self.wfile.write(body.encode())


print("web listening on 8080", flush=True)
ThreadingHTTPServer(("0.0.0.0", 8080), Web).serve_forever()
