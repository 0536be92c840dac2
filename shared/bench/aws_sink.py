"""An AWS-shaped sink on 127.0.0.1 for the bootstrap measurements: it answers every
DynamoDB and EventBridge request the functions make at once, as if every table were empty
and every event accepted, so that a bootstrap's time and memory are its own and not an
emulator's.

- DynamoDB (JSON 1.0, by `X-Amz-Target: DynamoDB_20120810.<Op>`): `GetItem` and
  `BatchGetItem` find no item; `PutItem`, `UpdateItem`, `DeleteItem` and
  `TransactWriteItems` succeed; `Query` and `Scan` find nothing.
- EventBridge (JSON 1.1, `AWSEvents.PutEvents`): every entry is accepted.
- SES v2 (REST JSON, `POST /v2/email/outbound-emails`): every mail is sent.
- Anything else: 400 `UnknownOperationException`, so that an unexpected call shows.

HTTP/1.1 with keep-alive and TCP_NODELAY, one thread per connection. Prints its port on
stdout, then serves until killed; on SIGTERM it prints the request count per operation on
stderr.

Usage: aws_sink.py [PORT]
"""
import collections
import json
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

EMPTY = b"{}"
NOTHING = b'{"Items":[],"Count":0,"ScannedCount":0}'
DYNAMODB = {
    "GetItem": EMPTY,
    "BatchGetItem": b'{"Responses":{},"UnprocessedKeys":{}}',
    "PutItem": EMPTY,
    "UpdateItem": EMPTY,
    "DeleteItem": EMPTY,
    "TransactWriteItems": EMPTY,
    "Query": NOTHING,
    "Scan": NOTHING,
}

counts = collections.Counter()
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without TCP_NODELAY the body waits for
    # the client's delayed ACK (about 40 ms).
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def answer(self, status, content_type, body):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        service, _, operation = (self.headers.get("X-Amz-Target") or "").partition(".")
        if self.path == "/v2/email/outbound-emails":
            service, operation = "SESv2", "SendEmail"
        with lock:
            counts[operation or "?"] += 1
        if operation == "SendEmail":
            with lock:
                message_id = f"sink-{counts[operation]}"
            return self.answer(200, "application/json", json.dumps({"MessageId": message_id}).encode())
        if service == "DynamoDB_20120810" and operation in DYNAMODB:
            return self.answer(200, "application/x-amz-json-1.0", DYNAMODB[operation])
        if service == "AWSEvents" and operation == "PutEvents":
            entries = len(json.loads(body or b"{}").get("Entries") or [])
            answer = {"FailedEntryCount": 0, "Entries": [{"EventId": f"sink-{i}"} for i in range(entries)]}
            return self.answer(200, "application/x-amz-json-1.1", json.dumps(answer).encode())
        unknown = {"__type": "com.amazon.coral.service#UnknownOperationException", "message": f"{service}.{operation}"}
        self.answer(400, "application/x-amz-json-1.0", json.dumps(unknown).encode())


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A measured process is killed with its connections open: not worth a traceback.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def main(port="0"):
    server = Server(("127.0.0.1", int(port)), Handler)

    def stop(*_):
        print(json.dumps(dict(counts)), file=sys.stderr, flush=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main(*sys.argv[1:])
