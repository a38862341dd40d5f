//! SCRAM users kept in the metadata quorum (KIP-554): `millrace user create|list|delete` and
//! confluent-kafka's AdminClient against a real broker, and the users surviving a restart
//! (they are replicated metadata, not broker memory).

use millrace_tests::{millrace, python, BrokerProcess};
use std::time::Duration;

const T: Duration = Duration::from_secs(120);

#[test]
fn users_are_created_listed_deleted_and_survive_a_restart() -> anyhow::Result<()> {
    let mut broker = BrokerProcess::start("")?;
    let bootstrap = broker.bootstrap();
    let dir = tempfile::tempdir()?;
    let password = dir.path().join("password");
    std::fs::write(&password, "s3cret\n")?;
    let password = password.display().to_string();
    let user = |args: &[&str]| {
        let mut all = vec!["user"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--bootstrap", &bootstrap]);
        millrace(&all)
    };
    user(&["create", "alice", "--password-file", &password])?;
    user(&["create", "bob", "--password-file", &password, "--mechanism", "SCRAM-SHA-256", "--iterations", "4096"])?;
    let listed = user(&["list"])?;
    assert_eq!(listed, "User: alice\tSCRAM-SHA-512=[iterations=8192]\nUser: bob\tSCRAM-SHA-256=[iterations=4096]\n");
    assert!(!listed.contains("s3cret"));
    // Too few iterations are refused by the broker, naming the rule and not the password.
    let refused = user(&["create", "eve", "--password-file", &password, "--iterations", "100"])
        .expect_err("100 iterations accepted");
    assert!(refused.to_string().contains("UnacceptableCredential"), "{refused}");
    assert!(!refused.to_string().contains("s3cret"));

    // A real Kafka client library reads and changes the same users.
    let out = python("scram_admin_check.py", &["--bootstrap", &bootstrap, "--expect-user", "alice"], T)?;
    assert!(out.contains("scram admin ok"), "{out}");

    user(&["delete", "bob", "--mechanism", "SCRAM-SHA-256"])?;
    broker.stop()?;
    broker.restart()?;
    let bootstrap = broker.bootstrap();
    let after = millrace(&["user", "list", "--bootstrap", &bootstrap])?;
    assert_eq!(after, "User: alice\tSCRAM-SHA-512=[iterations=8192]\n");
    Ok(())
}
