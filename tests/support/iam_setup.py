#!/usr/bin/env python3
"""Creates IAM users in a moto server for the least-privilege test, then turns
on moto's IAM enforcement.

Usage: iam_setup.py ENDPOINT TEMPLATE DROP_ACTION

Reads the function role's policy statements from template.yaml, its own and
those of the policies attached to it (organization mode's stream reading and
failed-record keeping; the actions as the template declares them; moto checks
actions, not resource ARNs, so the resources are "*") and creates:
- user `detector` with exactly those actions;
- user `short` with those actions but DROP_ACTION;
- user `observer` allowed everything, for the test's own reads.
Prints one JSON line with both users' access keys, then POSTs moto's
reset-auth so every later request is authenticated and authorized.
"""
import json
import sys
import urllib.request

import boto3
import yaml


class CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation short-form tags (!Ref, !Sub, ...) as plain data."""


def _any_tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)


CfnLoader.add_multi_constructor("!", _any_tag)


def role_actions(template_path):
    with open(template_path) as f:
        template = yaml.load(f, Loader=CfnLoader)
    resources = template["Resources"]
    documents = [p["PolicyDocument"] for p in resources["DetectorRole"]["Properties"]["Policies"]]
    documents += [
        r["Properties"]["PolicyDocument"]
        for r in resources.values()
        if r.get("Type") == "AWS::IAM::Policy" and "DetectorRole" in r["Properties"].get("Roles", [])
    ]
    actions = []
    for document in documents:
        for statement in document["Statement"]:
            if statement.get("Effect") != "Allow":
                continue
            listed = statement["Action"]
            actions.extend([listed] if isinstance(listed, str) else listed)
    return actions


def user(iam, name, actions):
    iam.create_user(UserName=name)
    iam.put_user_policy(
        UserName=name,
        PolicyName=name,
        PolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}],
        }),
    )
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return {"id": key["AccessKeyId"], "secret": key["SecretAccessKey"]}


def main():
    endpoint, template, drop = sys.argv[1], sys.argv[2], sys.argv[3]
    actions = role_actions(template)
    if drop not in actions:
        print(f"{drop} is not in the role's statements", file=sys.stderr)
        return 1
    iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1",
                       aws_access_key_id="test", aws_secret_access_key="test")
    keys = {"detector": user(iam, "detector", actions),
            "short": user(iam, "short", [a for a in actions if a != drop]),
            "observer": user(iam, "observer", ["*"]),
            "actions": actions}
    urllib.request.urlopen(urllib.request.Request(
        f"{endpoint}/moto-api/reset-auth", data=b"0", method="POST",
        headers={"Content-Type": "text/plain"})).read()
    print(json.dumps(keys), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
