#!/usr/bin/env python3
"""The bench's loopback page server: python's http.server serving one folder, threaded, with HTTP/1.1
keep-alive (`python3 -m http.server` speaks HTTP/1.0, one TCP connection per request, which would make the
server, not the browser or its driver, the limit on a page of 1,000 images), TCP_NODELAY, and no request
log.
Usage: serve.py DIR; binds 127.0.0.1 on a free port and prints "port N" on its first line."""
import functools
import http.server
import sys


class Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall

    def log_message(self, *args):
        pass


def main():
    handler = functools.partial(Handler, directory=sys.argv[1])
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    print(f"port {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
