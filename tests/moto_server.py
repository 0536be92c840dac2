"""moto's server for the system tests, with each request applied atomically.

moto's DynamoDB keeps no locks, so two concurrent TransactWriteItems can both pass their
conditions and both apply; DynamoDB serializes them. Holding one lock per request gives moto
the isolation the production code relies on.

moto also applies each write of a transaction whose condition holds before it finds that a
later one fails, and only then puts the tables back. Each applied write has already sent its
stream record by then, to the shard that the stream's readers hold, so a cancelled
transaction still shows up on the stream: a second request with an idempotency key, which
loses to the first, published an order that was never stored. DynamoDB applies nothing of a
cancelled transaction. So every condition is checked first, and a transaction is applied
only when all of them hold. Nothing else about moto changes.

Usage: moto_server.py HOST PORT
"""
import os
import sys
import threading

from werkzeug.serving import run_simple
from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import TransactionCanceledException
from moto.dynamodb.models import DynamoDBBackend
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app

apply_transaction = DynamoDBBackend.transact_write_items


def conditions_first(backend, transact_items):
    """Cancels a transaction with a condition that does not hold before any write is applied,
    with the reasons moto gives; everything else is moto's own."""
    reasons = []
    for item in transact_items:
        try:
            kind, op = next(iter(item.items()))
            table = backend.get_table(op["TableName"])
            if kind == "Put":
                attrs = op["Item"]
                key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = attrs[table.range_key_attr]
            else:
                key = op["Key"]
            current = backend.get_item(op["TableName"], key)
            condition = op.get("ConditionExpression")
            holds = condition is None or get_filter_expression(
                condition, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
            ).expr(current)
        except Exception:
            # A request moto refuses for another reason: moto answers it as it would.
            return apply_transaction(backend, transact_items)
        if holds:
            reasons.append((None, None, None))
        else:
            old = None
            if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                old = current.to_json()["Attributes"]
            reasons.append(("ConditionalCheckFailed", "The conditional request failed", old))
    if any(code is not None for code, _, _ in reasons):
        raise TransactionCanceledException(reasons)
    return apply_transaction(backend, transact_items)


def main(host, port):
    os.environ.setdefault("MOTO_PORT", port)
    DynamoDBBackend.transact_write_items = conditions_first
    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def one_at_a_time(environ, start_response):
        with lock:
            return list(app(environ, start_response))

    run_simple(host, int(port), one_at_a_time, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main(*sys.argv[1:])
