"""confluent-kafka AdminClient's ACL APIs against the broker: an ACL made with `millrace acl add`
is described, ACLs created by the client are stored and deleted by filter, an invalid binding is
INVALID_REQUEST, and (with --denied-topic) producing where a DENY applies fails with
TOPIC_AUTHORIZATION_FAILED. Prints "acl admin ok"."""

import argparse

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType,
                                   AdminClient, ResourcePatternType, ResourceType)

from roundtrip_check import fail

parser = argparse.ArgumentParser()
parser.add_argument("--bootstrap", required=True)
parser.add_argument("--expect-principal", required=True, help="has an ACL made with millrace acl add")
parser.add_argument("--denied-topic", help="a topic this client may not write")
args = parser.parse_args()

admin = AdminClient({"bootstrap.servers": args.bootstrap})


def any_filter(principal=None):
    return AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, principal, None,
                            AclOperation.ANY, AclPermissionType.ANY)


def describe(principal=None):
    return admin.describe_acls(any_filter(principal)).result(timeout=30)


if not any(b.principal == args.expect_principal for b in describe()):
    fail(f"no ACL of {args.expect_principal} in {describe()}")

carol = [
    AclBinding(ResourceType.TOPIC, "orders", ResourcePatternType.LITERAL, "User:carol", "*",
               AclOperation.READ, AclPermissionType.ALLOW),
    AclBinding(ResourceType.GROUP, "carol-", ResourcePatternType.PREFIXED, "User:carol", "10.0.0.7",
               AclOperation.READ, AclPermissionType.ALLOW),
]
for binding, f in admin.create_acls(carol).items():
    f.result(timeout=30)
described = sorted(describe("User:carol"), key=lambda b: b.name)
if [(b.restype, b.name, b.resource_pattern_type, b.host, b.operation) for b in described] != [
        (ResourceType.GROUP, "carol-", ResourcePatternType.PREFIXED, "10.0.0.7", AclOperation.READ),
        (ResourceType.TOPIC, "orders", ResourcePatternType.LITERAL, "*", AclOperation.READ)]:
    fail(f"carol's ACLs: {described}")

bad = AclBinding(ResourceType.TOPIC, "orders", ResourcePatternType.LITERAL, "User:carol", "not-an-ip",
                 AclOperation.READ, AclPermissionType.ALLOW)
try:
    for binding, f in admin.create_acls([bad]).items():
        f.result(timeout=30)
    fail("an ACL with host 'not-an-ip' was created")
except KafkaException as e:
    if e.args[0].code() != KafkaError.INVALID_REQUEST:
        fail(f"invalid host: {e}")

deleted = {}
for filt, f in admin.delete_acls([any_filter("User:carol")]).items():
    deleted[filt] = f.result(timeout=30)
if sum(len(v) for v in deleted.values()) != 2 or describe("User:carol"):
    fail(f"deleting carol's ACLs: {deleted}, left {describe('User:carol')}")

if args.denied_topic:
    errors = []
    producer = Producer({"bootstrap.servers": args.bootstrap, "message.timeout.ms": 10000})
    producer.produce(args.denied_topic, b"nope", on_delivery=lambda err, msg: errors.append(err))
    producer.flush(15)
    if [e.code() if e else None for e in errors] != [KafkaError.TOPIC_AUTHORIZATION_FAILED]:
        fail(f"producing to {args.denied_topic}: {errors}")
print("acl admin ok")
