#!/usr/bin/env python3
"""An HTTP server whose every answer is the client's address as the server sees it.

Usage: whoami_server.py ADDRESS PORT. ADDRESS may be IPv4 or IPv6 ("::" takes both families;
IPv4 clients then show as plain dotted quads). The shared-mode test uses it to see NAT at work.
"""
import http.server
import socket
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        host = self.client_address[0]
        if host.startswith("::ffff:"):
            host = host[len("::ffff:"):]
        body = host.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.client_address[0], fmt % args))
        sys.stderr.flush()


class Server(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET

    def server_bind(self):
        if self.address_family == socket.AF_INET6:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


Server((sys.argv[1], int(sys.argv[2])), Handler).serve_forever()
