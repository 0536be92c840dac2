"""Checks over the CloudFormation that SAM makes of template.yaml.

Usage: template_checks.py target/template.cfn.json

Then a self-test: copies of the template, each with one alarm, action, key or dashboard
row taken away, must each fail the checks.
"""
import copy
import json
import sys

# The one managed policy a function may have: writing its own logs.
LOGS = "arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
# Actions that IAM only grants on every resource; they reveal names, not data.
UNSCOPED = {"dynamodb:ListStreams"}


def refs(value):
    """Logical ids that a CloudFormation value refers to."""
    if isinstance(value, dict):
        if "Ref" in value:
            return [value["Ref"]]
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            return [target[0] if isinstance(target, list) else target.split(".")[0]]
        if "Fn::Sub" in value:
            sub = value["Fn::Sub"]
            text, variables = (sub, {}) if isinstance(sub, str) else (sub[0], sub[1])
            found = [v for k, v in variables.items() for v in refs(v)]
            for part in text.split("${")[1:]:
                name = part.split("}")[0].split(".")[0]
                if not name.startswith("AWS::") and name not in variables:
                    found.append(name)
            return found
        return [r for v in value.values() for r in refs(v)]
    if isinstance(value, list):
        return [r for v in value for r in refs(v)]
    return []


def run(resources):
    """The number of checks made over the template's resources, and those that failed."""
    failures, checks = [], 0

    def check(ok, what):
        nonlocal checks
        checks += 1
        if not ok:
            failures.append(what)

    dead_letter = set()
    for name, r in resources.items():
        p = r.get("Properties", {})
        if r["Type"] == "AWS::SQS::Queue" and "RedrivePolicy" in p:
            dead_letter.update(refs(p["RedrivePolicy"]))
        if r["Type"] == "AWS::Lambda::EventSourceMapping":
            dead_letter.update(refs(p.get("DestinationConfig", {})))
        if r["Type"] == "AWS::Events::Rule":
            dead_letter.update(t for target in p.get("Targets", []) for t in refs(target.get("DeadLetterConfig", {})))

    for name, r in resources.items():
        p = r.get("Properties", {})
        kind = r["Type"]
        if kind == "AWS::Lambda::EventSourceMapping":
            source = refs(p["EventSourceArn"])[0]
            reports = "ReportBatchItemFailures" in p.get("FunctionResponseTypes", [])
            check(reports, f"{name}: reports batch item failures")
            if resources[source]["Type"] == "AWS::DynamoDB::Table":
                check(p.get("BisectBatchOnFunctionError") is True, f"{name}: bisects on error")
                retries = p.get("MaximumRetryAttempts")
                check(isinstance(retries, int) and 0 <= retries <= 100, f"{name}: bounded retries ({retries})")
                check(bool(refs(p.get("DestinationConfig", {}).get("OnFailure", {}))), f"{name}: on-failure destination")
            else:
                limit = p.get("ScalingConfig", {}).get("MaximumConcurrency")
                check(isinstance(limit, int) and 2 <= limit <= 1000, f"{name}: a concurrency bulkhead ({limit})")
        elif kind == "AWS::Events::Archive":
            # The archive is how a service starts and a view is rebuilt: it keeps everything.
            check(p.get("RetentionDays", 0) == 0, f"{name}: unlimited retention ({p.get('RetentionDays')} days)")
        elif kind == "AWS::SQS::Queue":
            check("RedrivePolicy" in p or name in dead_letter, f"{name}: has a DLQ or is one")
        elif kind == "AWS::DynamoDB::Table":
            check(p.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled") is True, f"{name}: point-in-time recovery")
            check(p.get("SSESpecification", {}).get("SSEEnabled") is True, f"{name}: encryption")
            check(p.get("StreamSpecification", {}).get("StreamViewType") == "NEW_AND_OLD_IMAGES", f"{name}: stream of new and old images")
        elif kind == "AWS::IAM::Role":
            users = [f for f, r2 in resources.items() if r2["Type"] == "AWS::Lambda::Function" and refs(r2["Properties"].get("Role")) == [name]]
            check(len(users) == 1, f"{name}: serves exactly one function ({users})")
            function = users[0] if users else name
            own = function[: next((i for i, c in enumerate(function[1:], 1) if c.isupper()), len(function))]
            is_trigger = any(
                r2["Type"] == "AWS::Lambda::EventSourceMapping"
                and refs(r2["Properties"]["FunctionName"]) == [function]
                and resources[refs(r2["Properties"]["EventSourceArn"])[0]]["Type"] == "AWS::DynamoDB::Table"
                for r2 in resources.values()
            )
            for arn in p.get("ManagedPolicyArns", []):
                check(arn == {"Fn::Sub": LOGS}, f"{name}: managed policy {arn}")
            for policy in p.get("Policies", []):
                for statement in policy["PolicyDocument"]["Statement"]:
                    actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                    resources_ = statement.get("Resource")
                    everything = resources_ in ("*", ["*"])
                    check(not everything or set(actions) <= UNSCOPED, f"{name}: {actions} on *")
                    for target in refs(resources_):
                        allowed = target.startswith(own) or (target == "BulkheadBus" and is_trigger)
                        check(allowed, f"{name}: {actions} on {target}")
                    if any(a.startswith("events:") for a in actions):
                        check(is_trigger, f"{name}: only triggers put events")
    registries = [n for n, r in resources.items() if r["Type"] == "AWS::EventSchemas::Registry"]
    check(len(registries) == 1, f"one event schema registry ({registries})")
    for name, r in resources.items():
        if r["Type"] != "AWS::EventSchemas::Schema":
            continue
        p = r.get("Properties", {})
        check(refs(p.get("RegistryName")) == registries, f"{name}: in the schema registry")
        check(p.get("Type") == "JSONSchemaDraft4", f"{name}: a JSON Schema draft 4")
        try:
            content = json.loads(p.get("Content", ""))
        except ValueError:
            content = {}
        check(content.get("$schema") == "http://json-schema.org/draft-04/schema#", f"{name}: content is a draft 4 schema")
        event = content.get("properties", {}).get("type", {}).get("enum", [None])[0]
        version = content.get("properties", {}).get("schemaVersion", {}).get("enum", [None])[0]
        check(f"@{event}-v{version}" in p.get("SchemaName", ""), f"{name}: named after its event type and version")
    # Observability: every way a message or record can stall or end up aside has an alarm,
    # and every alarm notifies the one alarm topic.
    topics = [n for n, r in resources.items() if r["Type"] == "AWS::SNS::Topic"]
    check(len(topics) == 1, f"one alarm topic ({topics})")
    for topic in topics:
        key = resources[topic].get("Properties", {}).get("KmsMasterKeyId")
        keys = [k for k in refs(key) if resources.get(k, {}).get("Type") == "AWS::KMS::Key"]
        # CloudWatch can publish to an encrypted topic only if the key's policy lets it:
        # the AWS managed key (alias/aws/sns) does not.
        lets_cloudwatch = any(
            "cloudwatch.amazonaws.com" in str(s.get("Principal", {}).get("Service"))
            and {"kms:Decrypt", "kms:GenerateDataKey*"} <= set(s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
            for k in keys
            for s in resources[k]["Properties"].get("KeyPolicy", {}).get("Statement", [])
        )
        check(lets_cloudwatch, f"{topic}: encrypted under a key CloudWatch may use ({key})")
    alarms = {n: r.get("Properties", {}) for n, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    for name, p in alarms.items():
        for actions in ("AlarmActions", "OKActions"):
            check(bool(topics) and refs(p.get(actions, [])) == topics, f"{name}: {actions} notify the alarm topic ({p.get(actions)})")
        check(p.get("TreatMissingData") == "notBreaching", f"{name}: no data is not an alarm ({p.get('TreatMissingData')})")

    def alarmed(namespace, metric, dimension, target, at_first=False):
        """Whether an alarm watches `metric` of `target`; `at_first`: from its first one (>= 1)."""
        return any(
            p.get("Namespace") == namespace
            and p.get("MetricName") == metric
            and any(d.get("Name") == dimension and refs(d.get("Value")) == [target] for d in p.get("Dimensions", []))
            and (not at_first or (p.get("ComparisonOperator") == "GreaterThanOrEqualToThreshold" and str(p.get("Threshold")) in ("1", "1.0")))
            for p in alarms.values()
        )

    for queue in sorted(dead_letter):
        check(alarmed("AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", queue, at_first=True), f"{queue}: alarms at its first message")
    for name, r in resources.items():
        p = r.get("Properties", {})
        if r["Type"] == "AWS::Lambda::Function":
            check(alarmed("AWS/Lambda", "Errors", "FunctionName", name, at_first=True), f"{name}: alarms at its first error")
        elif r["Type"] == "AWS::Lambda::EventSourceMapping":
            source, function = refs(p["EventSourceArn"])[0], refs(p["FunctionName"])[0]
            if resources[source]["Type"] == "AWS::DynamoDB::Table":
                check(alarmed("AWS/Lambda", "IteratorAge", "FunctionName", function), f"{name}: {function} alarms on its iterator age")
            else:
                check(alarmed("AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", source), f"{name}: {source} alarms on the age of its oldest message")
                check(alarmed("Bulkhead", "ViewLag", "function", function), f"{name}: {function} alarms on its view's lag (the EMF figure ViewLag)")
    dashboards = [n for n, r in resources.items() if r["Type"] == "AWS::CloudWatch::Dashboard"]
    check(len(dashboards) == 1, f"one dashboard ({dashboards})")
    shown = {s for d in dashboards for s in refs(resources[d]["Properties"].get("DashboardBody"))}
    for name, r in resources.items():
        if r["Type"] in ("AWS::Lambda::Function", "AWS::SQS::Queue"):
            check(name in shown, f"{name}: on the dashboard")
    return checks, failures


def broken_copies(resources):
    """Copies of the template that each lack one thing the observability checks demand."""
    alarms = [n for n, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"]
    for metric in ("ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage", "IteratorAge", "Errors", "ViewLag"):
        for name in [n for n in alarms if resources[n]["Properties"].get("MetricName") == metric][:1]:
            yield f"without {name}", {k: v for k, v in resources.items() if k != name}
    for name in alarms[:1]:
        for actions in ("AlarmActions", "OKActions"):
            broken = copy.deepcopy(resources)
            del broken[name]["Properties"][actions]
            yield f"{name} without {actions}", broken
    for name in [n for n in alarms if resources[n]["Properties"].get("MetricName") == "ApproximateNumberOfMessagesVisible"][:1]:
        broken = copy.deepcopy(resources)
        broken[name]["Properties"]["Threshold"] = 5
        yield f"{name} waiting for 5 dead letters", broken
    for name in [n for n, r in resources.items() if r["Type"] == "AWS::SNS::Topic"]:
        broken = copy.deepcopy(resources)
        broken[name]["Properties"]["KmsMasterKeyId"] = "alias/aws/sns"
        yield f"{name} under alias/aws/sns", broken
    functions = [n for n, r in resources.items() if r["Type"] == "AWS::Lambda::Function"]
    for name, function in [(n, functions[0]) for n, r in resources.items() if r["Type"] == "AWS::CloudWatch::Dashboard" and functions]:
        broken = copy.deepcopy(resources)
        body = broken[name]["Properties"]["DashboardBody"]
        broken[name]["Properties"]["DashboardBody"] = json.loads(json.dumps(body).replace("${" + function + "}", "x"))
        yield f"{name} without {function}", broken


def main(path):
    resources = json.load(open(path))["Resources"]
    checks, failures = run(resources)
    copies = list(broken_copies(resources))
    missed = [what for what, broken in copies if not set(run(broken)[1]) - set(failures)]
    for f in failures:
        print(f"FAILED: {f}", file=sys.stderr)
    for what in missed:
        print(f"FAILED: self-test: a copy {what} passes the checks", file=sys.stderr)
    print(f"checks: {checks - len(failures)} passed, {len(failures)} failed")
    print(f"self-test: {len(copies) - len(missed)} of {len(copies)} broken copies caught")
    sys.exit(1 if failures or missed else 0)


if __name__ == "__main__":
    main(*sys.argv[1:])
