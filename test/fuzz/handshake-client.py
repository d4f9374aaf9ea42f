#!/usr/bin/env python3
"""Fuzz helper: plays launcher handshake sessions against the daemon's UNIX socket, with
fds attached where asked (Node cannot send SCM_RIGHTS). The sessions come from the fuzz
generators (test/fuzz/handshake.ts); this script only carries them out and reports.

stdin: one JSON session per line; stdout: one JSON result per line, in the same order.

  session {"steps": [step, ...], "child": bool, "wait": ms}
  step    {"data": str, "fds": [kind, ...], "pause": ms, "await": bool, "shutdown": bool,
           "close": bool}

data is bytes as a string of code points 0-255; "{child}" in it becomes the pid of a child
forked for the session when it asks for one (a real child of this process, whose pidfd the
"pidfd" fd kind is; the child exits when the session ends). fd kinds: null (/dev/null), pipe (the read end; the
write end is closed when the session ends), socket (one end of a socketpair), eventfd,
file (a regular file), memfd, pidfd (of the session's child, or of this process when the
session has none). "await" first reads the daemon's answer to what was sent so
far (until a line END, GO, ERR or USAGE, or a close), so that the next step arrives in a read of
its own.

After the steps the reply is read until the daemon closes the connection or `wait` ms
pass; when the last line is END or GO (the daemon waits for the launcher), reading stops
soon after. Every wait is bounded.

result  {"reply": str, "eof": bool, "reset": bool, "timeout": bool, "sendError": str|null,
         "ms": int}

usage: handshake-client.py SOCKET
"""

import array
import errno
import json
import os
import socket
import sys
import tempfile
import time

MAX_REPLY = 1 << 16


def make_fd(kind, keep, child):
    if kind == "pidfd":
        return os.pidfd_open(child[0] if child else os.getpid())
    if kind == "null":
        return os.open("/dev/null", os.O_RDWR)
    if kind == "pipe":
        r, w = os.pipe()
        keep.append(w)
        return r
    if kind == "socket":
        a, b = socket.socketpair()
        keep.append(b.detach())
        return a.detach()
    if kind == "eventfd":
        return os.eventfd(0)
    if kind == "file":
        f = tempfile.TemporaryFile()
        return os.dup(f.fileno())
    if kind == "memfd":
        return os.memfd_create("ssw-fuzz")
    raise ValueError(f"unknown fd kind {kind}")


def fork_child():
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(w)
        try:
            os.read(r, 1)  # returns when the parent closes w (or dies)
        finally:
            os._exit(0)
    os.close(r)
    return pid, w


def last_line(reply):
    if not reply.endswith(b"\n"):
        return None
    return reply[:-1].rsplit(b"\n", 1)[-1]


def read_reply(s, state, result, until_turn=False):
    """Reads into state["reply"] until EOF or the deadline; once the last line is END or GO
    (the daemon waits for us) stops soon after, or at once when until_turn (also on ERR).
    Only an answer to what was sent last counts (bytes after state["mark"]): an END that
    answered the HELLO does not end the wait for the answer to FD.
    Returns False when the connection is over."""
    while len(state["reply"]) < MAX_REPLY:
        last = last_line(state["reply"]) if len(state["reply"]) > state["mark"] else None
        turn = last in (b"END", b"GO")
        if until_turn and (turn or (last or b"").startswith((b"ERR ", b"USAGE "))):
            return True
        left = state["deadline"] - time.monotonic()
        if left <= 0:
            result["timeout"] = True
            return True
        s.settimeout(min(left, 0.05) if turn else left)
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            if not turn:
                result["timeout"] = True
            return True
        except ConnectionResetError:
            result["reset"] = True
            return False
        if not chunk:
            result["eof"] = True
            return False
        state["reply"] += chunk
    return True


def run_session(path, session):
    started = time.monotonic()
    keep = []
    child = None
    result = {"reply": "", "eof": False, "reset": False, "timeout": False, "sendError": None}
    state = {"reply": b"", "deadline": 0.0, "mark": 0}
    s = None
    try:
        if session.get("child"):
            child = fork_child()  # before any fd of the session exists, so it holds none
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect(path)
        closed_early = False
        for step in session.get("steps", []):
            if step.get("await"):
                state["deadline"] = time.monotonic() + session.get("wait", 2000) / 1000
                if not read_reply(s, state, result, until_turn=True):
                    break
            if step.get("pause"):
                time.sleep(step["pause"] / 1000)
            data = step.get("data", "").replace("{child}", str(child[0] if child else 0)).encode("latin-1")
            fds = [make_fd(k, keep, child) for k in step.get("fds", [])]
            if data or fds:
                state["mark"] = len(state["reply"])
            try:
                if fds:
                    socket.send_fds(s, [data], fds)
                elif data:
                    s.sendall(data)
            except OSError as e:
                result["sendError"] = errno.errorcode.get(e.errno, str(e.errno))
            finally:
                for fd in fds:
                    os.close(fd)
            if result["sendError"]:
                break
            if step.get("shutdown"):
                s.shutdown(socket.SHUT_WR)
            if step.get("close"):
                closed_early = True
                break
        if not closed_early:
            state["deadline"] = time.monotonic() + session.get("wait", 2000) / 1000
            read_reply(s, state, result)
    except OSError as e:
        result["sendError"] = result["sendError"] or errno.errorcode.get(e.errno, str(e.errno))
    finally:
        if s is not None:
            s.close()
        for fd in keep:
            os.close(fd)
        if child:
            os.close(child[1])
            os.waitpid(child[0], 0)
        result["reply"] = state["reply"].decode("latin-1")
        result["ms"] = int((time.monotonic() - started) * 1000)
    return result


def main():
    path = sys.argv[1]
    for line in sys.stdin:
        if not line.strip():
            continue
        print(json.dumps(run_session(path, json.loads(line))), flush=True)


if __name__ == "__main__":
    main()
