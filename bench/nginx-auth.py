#!/usr/bin/env python3
"""The auth_http endpoint of the benchmark's nginx mail proxy: every login is accepted and
sent to the origin Dovecot (which checks the password itself).

    bench/nginx-auth.py PORT ORIGIN_PORT

Standard library only; one thread per request; no logging.
"""
import http.server
import sys


def main():
    port, origin = int(sys.argv[1]), sys.argv[2]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Auth-Status", "OK")
            self.send_header("Auth-Server", "127.0.0.1")
            self.send_header("Auth-Port", origin)
            self.end_headers()

        def log_message(self, *args):
            pass

    class Server(http.server.ThreadingHTTPServer):
        # socketserver's default listen backlog is 5: with 16 parallel logins nginx's connects
        # overflow it and stall for a SYN retransmit (1 s), which would be charged to nginx.
        request_queue_size = 1024

    server = Server(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
