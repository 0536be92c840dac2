"""Transforms a SAM template to plain CloudFormation with samtranslator, offline.

Usage: sam_transform.py TEMPLATE OUTPUT
"""
import json
import sys

import boto3
from samtranslator.public.translator import ManagedPolicyLoader
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class OfflinePolicies(ManagedPolicyLoader):
    """Answers managed policy ARNs without calling IAM."""

    def __init__(self):
        super().__init__(boto3.client("iam", region_name="us-east-1"))

    def load(self):
        return {
            "AWSLambdaBasicExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
            "AWSLambdaDynamoDBExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaDynamoDBExecutionRole",
            "AWSLambdaSQSQueueExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole",
        }


def main(source, output):
    with open(source) as f:
        sam = yaml_parse(f.read())
    # What `sam package` does: local code becomes an S3 location.
    for resource in sam["Resources"].values():
        props = resource.get("Properties", {})
        if resource.get("Type") == "AWS::Serverless::Function" and not str(props.get("CodeUri", "")).startswith("s3://"):
            props["CodeUri"] = f"s3://bulkhead-artifacts/{props.get('CodeUri', '.')}.zip"
    cfn = transform(sam, {}, OfflinePolicies())
    with open(output, "w") as f:
        json.dump(cfn, f, indent=2, default=str)
    print(f"{source}: {len(cfn['Resources'])} CloudFormation resources written to {output}")


if __name__ == "__main__":
    main(*sys.argv[1:])
