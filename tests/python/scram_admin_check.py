"""confluent-kafka AdminClient's SCRAM user APIs (KIP-554) against the broker: users created
with `millrace user create` are described, a user set by the client is stored, an unknown
user is RESOURCE_NOT_FOUND, and a deletion removes it. Prints the described users."""

import argparse

from confluent_kafka import KafkaException
from confluent_kafka.admin import (AdminClient, ScramCredentialInfo, ScramMechanism,
                                   UserScramCredentialDeletion, UserScramCredentialUpsertion)

from roundtrip_check import fail

parser = argparse.ArgumentParser()
parser.add_argument("--bootstrap", required=True)
parser.add_argument("--expect-user", required=True, help="a user made with millrace user create")
args = parser.parse_args()

admin = AdminClient({"bootstrap.servers": args.bootstrap})


def describe(users):
    futures = admin.describe_user_scram_credentials(users)
    return {user: f.result(timeout=30) for user, f in futures.items()}


described = describe([args.expect_user])
infos = described[args.expect_user].scram_credential_infos
if [(i.mechanism, i.iterations) for i in infos] != [(ScramMechanism.SCRAM_SHA_512, 8192)]:
    fail(f"{args.expect_user}: {infos}")

upsert = UserScramCredentialUpsertion("carol", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096), b"pencil")
for user, f in admin.alter_user_scram_credentials([upsert]).items():
    f.result(timeout=30)
described = describe(["carol"])
if [(i.mechanism, i.iterations) for i in described["carol"].scram_credential_infos] != [(ScramMechanism.SCRAM_SHA_256, 4096)]:
    fail(f"carol: {described['carol']}")

try:
    describe(["nobody"])
    fail("an unknown user was described")
except KafkaException as e:
    if "RESOURCE_NOT_FOUND" not in str(e) and "not found" not in str(e).lower():
        fail(f"unknown user: {e}")

deletion = UserScramCredentialDeletion("carol", ScramMechanism.SCRAM_SHA_256)
for user, f in admin.alter_user_scram_credentials([deletion]).items():
    f.result(timeout=30)
try:
    describe(["carol"])
    fail("carol is still there after the deletion")
except KafkaException:
    pass
print("scram admin ok")
