"""The cost model: Lambda GB-seconds and dollars per million orders through the whole system,
at 128 MB, from the measured durations.

Inputs, all measured on this machine (x86_64, as a proxy for arm64):

- per record / per event: the criterion benches through the AWS adapters to the local sinks
  answering at once (`stream/trigger/eventbridge/0ms`, `listener/<view>/dynamodb/0ms`), mean
  time of 1,000 records;
- per invocation: each bootstrap's warm median against the AWS-shaped sink
  (target/workload/coldstart.json, from `shared/bench/run coldstart`), which also holds the
  local Runtime API's round trip;
- batch sizes: the `BatchSize` of each event source mapping in template.yaml;
- requests in flight: `DEFAULT_IN_FLIGHT` of `bulkhead::trigger` and `bulkhead::listener`.

The model:

- an order is placed, then changed once (shipped, cancelled or a line added), as in the
  workload: 2 commands to the orders API, 2 stream records through the orders trigger, and 2
  events into each of the tracking, fulfillment and sales listeners;
- a command costs the API's warm invocation plus the CPU of its DynamoDB requests, taken as
  the fulfillment listener's CPU per event (one `PutItem` and the event's own decoding, so
  an upper bound): placing an 8-line order with an Idempotency-Key makes 4 requests in
  sequence (the key, the catalog cache's 8 offers in one `BatchGetItem`, the order, one
  transaction), a change 3;
- an invocation of N records takes `warm + N × per_record` of CPU on one full core;
- Lambda gives a function CPU in proportion to its memory, one vCPU at 1,769 MB
  (https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html), so at 128 MB
  that CPU time stretches by 1,769 / 128 = 13.8 (CPU-bound work costs the same GB-seconds
  at any memory size up to 1,769 MB);
- waiting does not stretch: an invocation also waits for its round trips in sequence, at
  `PutEvents` 20 ms and a DynamoDB request 4 ms (the benches' `aws` latencies). The trigger
  sends a request per 10 records, `DEFAULT_IN_FLIGHT` of them at once; a listener applies
  `DEFAULT_IN_FLIGHT` messages at once, each with its round trips in sequence (tracking 2:
  the names, then the row; sales 2: its bookkeeping, then one transaction; fulfillment 1);
  the model adds the waits to the CPU, which is the worst case (the trigger overlaps them);
- billed duration is rounded up to the millisecond; GB-s = 0.125 GB × billed seconds.

Prices (AWS Lambda pricing page, us-east-1, as assumed on 2026-11-22): arm64
$0.0000133334 per GB-s (the first 7.5 billion GB-s a month) and $0.20 per million requests.

Usage: cost.py [CRITERION_DIR] [COLDSTART_JSON] [TEMPLATE]
"""
import json
import math
import re
import os
import sys

GB_SECOND = 0.0000133334  # USD, arm64, us-east-1
REQUEST = 0.20 / 1_000_000  # USD per invocation
MEMORY_GB = 128 / 1024
CPU_STRETCH = 1769 / 128
EVENTS_PER_ORDER = 2
# DynamoDB requests in sequence of the two commands of an order: place (8 lines,
# Idempotency-Key), change.
COMMAND_REQUESTS = (4, 3)
PUT_EVENTS_MS, DYNAMODB_MS = 20.0, 4.0
ENTRIES_PER_PUT_EVENTS = 10
# DynamoDB round trips in sequence for one message.
ROUND_TRIPS = {"TrackingListenerFunction": 2, "FulfillmentListenerFunction": 1, "SalesListenerFunction": 2}

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def mean_ns(criterion_dir, group, bench):
    estimates = json.load(open(os.path.join(criterion_dir, group, bench, "new", "estimates.json")))
    return estimates["mean"]["point_estimate"]


def in_flight(source):
    text = open(os.path.join(ROOT, "shared", "bulkhead", "src", source)).read()
    return int(re.search(r"pub const DEFAULT_IN_FLIGHT: usize = (\d+);", text).group(1))


def wait_ms(function, n, latency):
    """The round trips in sequence of an invocation of `n` records, at AWS-like latency."""
    if not latency:
        return 0.0
    if "Trigger" in function:
        requests = math.ceil(n / ENTRIES_PER_PUT_EVENTS)
        return math.ceil(requests / in_flight("trigger.rs")) * PUT_EVENTS_MS
    return math.ceil(n / in_flight("listener/mod.rs")) * ROUND_TRIPS[function] * DYNAMODB_MS


def batch_sizes(template_path):
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    from samtranslator.yaml_helper import yaml_parse

    template = yaml_parse(open(template_path).read())
    sizes = {}
    for logical_id, resource in template["Resources"].items():
        for event in (resource.get("Properties", {}).get("Events") or {}).values():
            if event["Type"] in ("DynamoDB", "SQS"):
                sizes[logical_id] = event["Properties"].get("BatchSize")
    return sizes


def invocation(cpu_ms, waiting_ms=0.0):
    """Billed ms and GB-s of one invocation that needs `cpu_ms` of a full core and waits
    `waiting_ms` on the network."""
    billed = max(1, math.ceil(cpu_ms * CPU_STRETCH + waiting_ms))
    return billed, MEMORY_GB * billed / 1000


def main(criterion_dir=os.path.join(ROOT, "target", "criterion"),
         coldstart=os.path.join(ROOT, "target", "workload", "coldstart.json"),
         template=os.path.join(ROOT, "template.yaml")):
    warm = {r["function"]: r["warm_ms"] for r in json.load(open(coldstart))}
    sizes = batch_sizes(template)
    per_record_ms = {
        "OrdersTriggerFunction": mean_ns(criterion_dir, "stream", "trigger_eventbridge_0ms") / 1000 / 1e6,
        "TrackingListenerFunction": mean_ns(criterion_dir, "listener", "tracking_dynamodb_0ms") / 1000 / 1e6,
        "FulfillmentListenerFunction": mean_ns(criterion_dir, "listener", "fulfillment_dynamodb_0ms") / 1000 / 1e6,
        "SalesListenerFunction": mean_ns(criterion_dir, "listener", "sales_dynamodb_0ms") / 1000 / 1e6,
    }
    request_ms = per_record_ms["FulfillmentListenerFunction"]
    commands_ms = [warm["OrdersApiFunction"] + n * request_ms for n in COMMAND_REQUESTS]

    print("CPU on one full x86_64 core (per invocation: warm median against the sink):\n")
    print("| function | per invocation (ms) | per record (µs) | BatchSize |")
    print("|---|---|---|---|")
    for label, n, ms in zip(("place", "change"), COMMAND_REQUESTS, commands_ms):
        print(f"| OrdersApiFunction, {label} command ({n} DynamoDB requests) | {ms:.2f} | — | — |")
    for f, ms in per_record_ms.items():
        print(f"| {f} | {warm[f]:.2f} | {ms * 1000:.0f} | {sizes.get(f)} |")

    ns = [1, 10, 100, 1000, 10000]
    latencies = [("0 ms", False), ("AWS-like latency", True)]
    for title, latency in latencies:
        print(f"\nUSD per million records at 128 MB, {title}, by records per invocation N"
              " (billed duration in brackets; * the template's BatchSize):\n")
        print("| function | " + " | ".join(f"N = {n:,}" for n in ns) + " |")
        print("|---|" + "---|" * len(ns))
        for f, ms in per_record_ms.items():
            cells = []
            for n in ns:
                billed, gbs = invocation(warm[f] + n * ms, wait_ms(f, n, latency))
                per_million = (gbs * GB_SECOND + REQUEST) / n * 1e6
                mark = "*" if n == sizes.get(f) else ""
                cells.append(f"{per_million:.3f}{mark} ({billed:,} ms)")
            print(f"| {f} | " + " | ".join(cells) + " |")

    print("\nPer million orders (2 commands, 2 stream records, 2 events into each of 3 listeners),"
          " USD at 0 ms and at AWS-like latency:\n")
    print("| batch fill: trigger / listeners | invocations | requests | duration, 0 ms | total, 0 ms"
          " | duration, AWS-like | total, AWS-like |")
    print("|---|---|---|---|---|---|---|")
    fills = [("1 / 1 (every record alone)", 1, 1)]
    fills.append((f"{sizes['OrdersTriggerFunction']} / {sizes['TrackingListenerFunction']} (full batches, template BatchSize)",
                  sizes["OrdersTriggerFunction"], sizes["TrackingListenerFunction"]))
    fills += [("1,000 / 1,000", 1000, 1000), ("10,000 / 10,000 (Lambda's maxima)", 10000, 10000)]
    orders = 1_000_000
    records = orders * EVENTS_PER_ORDER
    for label, trigger_n, listener_n in fills:
        invocations = 2 * orders + sum(records / (trigger_n if "Trigger" in f else listener_n) for f in per_record_ms)
        cells = []
        for _, latency in latencies:
            gbs = sum(orders * invocation(ms, n * DYNAMODB_MS if latency else 0)[1]
                      for n, ms in zip(COMMAND_REQUESTS, commands_ms))
            for f, ms in per_record_ms.items():
                n = trigger_n if "Trigger" in f else listener_n
                gbs += records / n * invocation(warm[f] + n * ms, wait_ms(f, n, latency))[1]
            cells.append(gbs * GB_SECOND)
        requests = invocations * REQUEST
        print(f"| {label} | {invocations:,.0f} | {requests:.2f} | {cells[0]:.2f} | {requests + cells[0]:.2f}"
              f" | {cells[1]:.2f} | {requests + cells[1]:.2f} |")

if __name__ == "__main__":
    main(*sys.argv[1:])
