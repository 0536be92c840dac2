"""moto's server for the system tests, with each request applied atomically.

moto's DynamoDB keeps no locks, so two concurrent TransactWriteItems can both pass their
conditions and both apply; DynamoDB serializes them. Holding one lock per request gives moto
the isolation the production code relies on. Nothing else about moto changes.

Usage: moto_server.py HOST PORT
"""
import os
import sys
import threading

from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app


def main(host, port):
    os.environ.setdefault("MOTO_PORT", port)
    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def one_at_a_time(environ, start_response):
        with lock:
            return list(app(environ, start_response))

    run_simple(host, int(port), one_at_a_time, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main(*sys.argv[1:])
