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
