"""tests/rawhttp.py - the few lines of HTTP the fault tests speak over a raw
socket, where curl cannot go: several requests on one kept connection, sent
and read in an order the test chooses."""

import socket
import struct


def post(sock, attrs, body):
    """POSTs body to /invocations with the faulty plug-in's command attrs."""
    sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\n"
                 b"X-Amzn-SageMaker-Custom-Attributes: " + attrs +
                 b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)


# Bytes read past the response a call returned: the start of the next one,
# when the server wrote two before the test read (pipelined requests).
_ahead = {}


def _more(sock):
    d = sock.recv(65536)
    if not d:
        raise ConnectionError("the server closed the connection before a whole response")
    return d


def response(sock):
    """Reads one response, and keeps what follows it for the next call;
    returns its status line and its body as text."""
    line, _, body = response_with_headers(sock)
    return line, body


def response_with_headers(sock):
    """As response, with the headers between: a dict of lower-cased names."""
    buf = _ahead.pop(sock, b"")
    while b"\r\n\r\n" not in buf:
        buf += _more(sock)
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    headers = {}
    for l in lines[1:]:
        name, _, value = l.partition(b":")
        headers[name.strip().lower().decode()] = value.strip().decode("latin-1")
    n = int(headers["content-length"])
    while len(body) < n:
        body += _more(sock)
    if len(body) > n:
        _ahead[sock] = body[n:]
    return lines[0].decode(), headers, body[:n].decode("latin-1").strip()


def reset(sock):
    """Closes with a reset (RST) rather than an orderly end of stream."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def until_close(sock):
    """Reads until the server closes; a reset ends the bytes with its name,
    " [ConnectionResetError]", so a test sees how the connection ended."""
    buf = _ahead.pop(sock, b"")
    try:
        while True:
            d = sock.recv(4096)
            if not d:
                return buf
            buf += d
    except OSError as e:
        return buf + b" [%s]" % type(e).__name__.encode()


# ---- answers framed any way: Content-Length, chunked, or ended by a close ----

def invocation(attrs, body=b"x", version=b"HTTP/1.1", headers=b""):
    """The bytes of a POST /invocations with the faulty plug-in's command
    attrs; headers are extra header lines, each ending in CRLF."""
    return (b"POST /invocations " + version + b"\r\nHost: x\r\n"
            b"X-Amzn-SageMaker-Custom-Attributes: " + attrs + b"\r\n" + headers +
            b"Content-Length: %d\r\n\r\n" % len(body) + body)


class Answer:
    """One response as it arrived. framing is "length", "chunked", "close" or
    "none" (a 204); ended is "complete" (the framing's own end: all of
    Content-Length, the last chunk, or an orderly close for a close-delimited
    body), "closed" (end of stream before that), "reset", "timeout" or
    "bad framing: ..."; chunks holds the chunk sizes, the last one 0 only when
    the last chunk came; trailer is what came between the last chunk and the
    blank line ending it (b"" for a bare 0\\r\\n\\r\\n). body holds the body
    unless a sink took it; length counts it either way."""

    def __init__(self):
        self.line, self.status, self.headers, self.repeated = "", 0, {}, []
        self.framing, self.ended, self.chunks, self.trailer = "", "", [], b""
        self.body, self.length = b"", 0


class _Ended(Exception):
    pass


class _Reader:
    """Bytes from a socket, the ones read ahead of an answer kept for the next."""

    def __init__(self, sock):
        self.sock, self.buf = sock, _ahead.pop(sock, b"")

    def fill(self):
        try:
            d = self.sock.recv(1 << 20)
        except ConnectionResetError:
            raise _Ended("reset")
        except socket.timeout:
            raise _Ended("timeout")
        if not d:
            raise _Ended("closed")
        self.buf += d

    def line(self, limit=8192):
        while b"\r\n" not in self.buf:
            if len(self.buf) > limit:
                raise _Ended("bad framing: no CRLF in %d bytes" % limit)
            self.fill()
        l, _, self.buf = self.buf.partition(b"\r\n")
        return l

    def exactly(self, n, take):
        while n > 0:
            if not self.buf:
                self.fill()
            piece, self.buf = self.buf[:n], self.buf[n:]
            take(piece)
            n -= len(piece)

    def keep(self):
        if self.buf:
            _ahead[self.sock] = self.buf


def _head(r, a):
    while True:
        a.line = r.line().decode("latin-1")
        code = a.line.split(" ")[1:2]
        if not a.line.startswith("HTTP/1.") or not code or not code[0].isdigit():
            raise _Ended("bad framing: status line %r" % a.line[:60])
        a.status = int(code[0])
        a.headers, a.repeated = {}, []
        while True:
            l = r.line()
            if not l:
                break
            name, _, value = l.partition(b":")
            name, value = name.strip().lower().decode(), value.strip().decode("latin-1")
            if name in a.headers:
                a.repeated.append(name)
                value = a.headers[name] + ", " + value
            a.headers[name] = value
        if a.status >= 200:
            return


def _chunked(r, a, take):
    while True:
        size = r.line()
        if not size or size.strip(b"0123456789abcdefABCDEF"):
            raise _Ended("bad framing: chunk size line %r" % size[:40])
        n = int(size, 16)
        a.chunks.append(n)
        if n == 0:
            break
        r.exactly(n, take)
        while len(r.buf) < 2:
            r.fill()
        if r.buf[:2] != b"\r\n":
            raise _Ended("bad framing: chunk of %d not followed by CRLF but %r" % (n, r.buf[:10]))
        r.buf = r.buf[2:]
    while True:
        l = r.line()
        if not l:
            return
        a.trailer += l + b"\r\n"


def _until_close(r, a, take):
    while True:
        take(r.buf)
        r.buf = b""
        try:
            r.fill()
        except _Ended as e:
            if str(e) == "closed":
                return
            raise


def answer(sock, sink=None, head=False):
    """Reads one response (1xx skipped) framed as RFC 9112 section 6.3 says;
    never raises for how it ends, only records it. sink(bytes), if given,
    gets the body as it arrives instead of Answer.body. head: the answer
    to a HEAD, no body whatever its headers say."""
    a, r = Answer(), _Reader(sock)
    parts = []

    def take(b):
        a.length += len(b)
        if sink:
            sink(b)
        else:
            parts.append(b)
    try:
        _head(r, a)
        te, cl = a.headers.get("transfer-encoding"), a.headers.get("content-length")
        if head or a.status in (204, 304):
            a.framing = "none"
        elif te is not None:
            a.framing = "chunked"
            if te.lower() != "chunked":
                raise _Ended("bad framing: Transfer-Encoding %r" % te)
            _chunked(r, a, take)
        elif cl is not None:
            a.framing = "length"
            if not cl.isdigit():
                raise _Ended("bad framing: Content-Length %r" % cl)
            r.exactly(int(cl), take)
        else:
            a.framing = "close"
            _until_close(r, a, take)
        a.ended = "complete"
        r.keep()
    except _Ended as e:
        a.ended = str(e)
    a.body = b"".join(parts)
    return a


PATTERN_PERIOD = 251
_PATTERN = bytes(range(PATTERN_PERIOD)) * (((1 << 20) + 2 * PATTERN_PERIOD) // PATTERN_PERIOD)


class PatternCheck:
    """A sink that checks a body of the faulty plug-in's stream pattern (byte
    i is i % 251) as it arrives: .good stays True while every byte is
    right, .bad_at is the offset of the first wrong one."""

    def __init__(self):
        self.length, self.good, self.bad_at = 0, True, None

    def __call__(self, b):
        at = 0
        while at < len(b) and self.good:
            part = b[at:at + (1 << 20)]
            phase = (self.length + at) % PATTERN_PERIOD
            if part != _PATTERN[phase:phase + len(part)]:
                for i, x in enumerate(part):
                    if x != (self.length + at + i) % PATTERN_PERIOD:
                        self.good, self.bad_at = False, self.length + at + i
                        break
            at += len(part)
        self.length += len(b)
