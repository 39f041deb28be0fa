"""moto server with one request processed at a time.

moto's own `moto_server` is multi-threaded, and its DynamoDB checks a condition and writes
without a lock: two concurrent conditional writes can both pass. Real DynamoDB evaluates a
condition atomically with its write, and the gateway's exactly-once guarantees stand on
that, so the local stack serialises request processing (connections are still accepted
concurrently)."""

import argparse
import os
import signal
import sys
import threading

from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)

parser = argparse.ArgumentParser()
parser.add_argument("-H", "--host", default="127.0.0.1")
parser.add_argument("-p", "--port", type=int, default=int(os.environ.get("MOTO_PORT", 5000)))
args = parser.parse_args()
os.environ.setdefault("MOTO_PORT", str(args.port))

app = DomainDispatcherApplication(create_backend_app)
lock = threading.Lock()


def serialised(environ, start_response):
    with lock:
        # Materialise the body inside the lock: the write is done when the answer is.
        return list(app(environ, start_response))


signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
run_simple(args.host, args.port, serialised, threaded=True, request_handler=MotoRequestHandler)
