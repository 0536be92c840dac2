"""The cost model: Lambda GB-seconds and dollars per million orders through the whole system,
at 128 MB, from the measured durations.

Inputs, all measured on this machine (x86_64, as a proxy for arm64):

- per record / per event: the criterion benches through the AWS adapters to the local sinks
  (`stream/trigger_eventbridge`, `listener/<view>_dynamodb`), mean time of 1,000 / 1,000;
- per invocation: each bootstrap's warm median against the AWS-shaped sink
  (target/workload/coldstart.json, from `shared/bench/run coldstart`), which also holds the
  local Runtime API's round trip;
- batch sizes: the `BatchSize` of each event source mapping in template.yaml.

The model:

- an order is placed, then changed once (shipped, cancelled or a line added), as in the
  workload: 2 commands to the orders API, 2 stream records through the orders trigger, and 2
  events into each of the tracking, fulfillment and sales listeners;
- a command costs the API's warm invocation plus the CPU of its DynamoDB requests, taken as
  the fulfillment listener's CPU per event (one `PutItem` and the event's own decoding, so
  an upper bound): placing an 8-line order with an Idempotency-Key makes 11 requests (the
  key, 8 catalog-cache reads, the order, one transaction), a change 3;
- an invocation of N records takes `warm + N × per_record` of CPU on one full core;
- Lambda gives a function CPU in proportion to its memory, one vCPU at 1,769 MB
  (https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html), so at 128 MB
  that CPU time stretches by 1,769 / 128 = 13.8 (CPU-bound work costs the same GB-seconds
  at any memory size up to 1,769 MB);
- billed duration is rounded up to the millisecond; GB-s = 0.125 GB × billed seconds;
- time spent waiting on DynamoDB or EventBridge is not in it (the sinks answer at once):
  each millisecond of waiting per invocation adds 0.125 GB-ms.

Prices (AWS Lambda pricing page, us-east-1, as assumed on 2026-11-22): arm64
$0.0000133334 per GB-s (the first 7.5 billion GB-s a month) and $0.20 per million requests.

Usage: cost.py [CRITERION_DIR] [COLDSTART_JSON] [TEMPLATE]
"""
import json
import math
import os
import sys

GB_SECOND = 0.0000133334  # USD, arm64, us-east-1
REQUEST = 0.20 / 1_000_000  # USD per invocation
MEMORY_GB = 128 / 1024
CPU_STRETCH = 1769 / 128
EVENTS_PER_ORDER = 2
# DynamoDB requests of the two commands of an order: place (8 lines, Idempotency-Key), change.
COMMAND_REQUESTS = (11, 3)

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def mean_ns(criterion_dir, group, bench):
    estimates = json.load(open(os.path.join(criterion_dir, group, bench, "new", "estimates.json")))
    return estimates["mean"]["point_estimate"]


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


def invocation(cpu_ms):
    """Billed ms and GB-s of one invocation that needs `cpu_ms` of a full core."""
    billed = max(1, math.ceil(cpu_ms * CPU_STRETCH))
    return billed, MEMORY_GB * billed / 1000


def main(criterion_dir=os.path.join(ROOT, "target", "criterion"),
         coldstart=os.path.join(ROOT, "target", "workload", "coldstart.json"),
         template=os.path.join(ROOT, "template.yaml")):
    warm = {r["function"]: r["warm_ms"] for r in json.load(open(coldstart))}
    sizes = batch_sizes(template)
    per_record_ms = {
        "OrdersTriggerFunction": mean_ns(criterion_dir, "stream", "trigger_eventbridge") / 1000 / 1e6,
        "TrackingListenerFunction": mean_ns(criterion_dir, "listener", "tracking_dynamodb") / 1000 / 1e6,
        "FulfillmentListenerFunction": mean_ns(criterion_dir, "listener", "fulfillment_dynamodb") / 1000 / 1e6,
        "SalesListenerFunction": mean_ns(criterion_dir, "listener", "sales_dynamodb") / 1000 / 1e6,
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
    print("\nUSD per million records at 128 MB, by records per invocation N (* the template's BatchSize):\n")
    print("| function | " + " | ".join(f"N = {n:,}" for n in ns) + " |")
    print("|---|" + "---|" * len(ns))
    for f, ms in per_record_ms.items():
        cells = []
        for n in ns:
            billed, gbs = invocation(warm[f] + n * ms)
            per_million = (gbs * GB_SECOND + REQUEST) / n * 1e6
            mark = "*" if n == sizes.get(f) else ""
            cells.append(f"{per_million:.3f}{mark} ({billed:,} ms)")
        print(f"| {f} | " + " | ".join(cells) + " |")

    print("\nPer million orders (2 commands, 2 stream records, 2 events into each of 3 listeners):\n")
    print("| batch fill: trigger / listeners | invocations | GB-s | requests (USD) | duration (USD) | total (USD) |")
    print("|---|---|---|---|---|---|")
    fills = [("1 / 1 (every record alone)", 1, 1)]
    fills.append((f"{sizes['OrdersTriggerFunction']} / {sizes['TrackingListenerFunction']} (full batches, template BatchSize)",
                  sizes["OrdersTriggerFunction"], sizes["TrackingListenerFunction"]))
    fills += [("1,000 / 1,000", 1000, 1000), ("10,000 / 10,000 (Lambda's maxima)", 10000, 10000)]
    orders = 1_000_000
    records = orders * EVENTS_PER_ORDER
    for label, trigger_n, listener_n in fills:
        invocations = 2 * orders
        gbs = sum(orders * invocation(ms)[1] for ms in commands_ms)
        for f, ms in per_record_ms.items():
            n = trigger_n if "Trigger" in f else listener_n
            count = records / n
            invocations += count
            gbs += count * invocation(warm[f] + n * ms)[1]
        requests, duration = invocations * REQUEST, gbs * GB_SECOND
        print(f"| {label} | {invocations:,.0f} | {gbs:,.0f} | {requests:.2f} | {duration:.2f} | {requests + duration:.2f} |")
    wait = MEMORY_GB / 1000 * GB_SECOND * 1e6
    print(f"\nEach millisecond an invocation waits on DynamoDB or EventBridge adds {MEMORY_GB / 1000:.6f} GB-s,")
    print(f"USD {wait:.5f} per million invocations.")


if __name__ == "__main__":
    main(*sys.argv[1:])
