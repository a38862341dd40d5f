//! `millrace user create|delete|list`: SCRAM users in the cluster's metadata quorum, over the
//! Kafka protocol (AlterUserScramCredentials / DescribeUserScramCredentials, KIP-554), as
//! Kafka's `kafka-configs --alter --add-config 'SCRAM-SHA-512=[...]' --entity-type users` does.
//! The password is salted and iterated here; only the salt and the salted password travel.

use crate::cluster::check;
use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{AlterUserScramCredentialsRequest, DescribeUserScramCredentialsRequest};
use kafka_protocol::protocol::StrBytes;
use millrace_broker::security::scram::{Mechanism, OsRandom, RandomSource, SALT_LEN};
use millrace_protocol::Connection;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(15);

/// `millrace user` arguments.
#[derive(Args)]
pub struct UserArgs {
    #[command(flatten)]
    client: crate::client::ClientArgs,
    #[command(subcommand)]
    command: UserCommand,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user, or set a new password (one SCRAM mechanism per call).
    Create {
        /// User name.
        name: String,
        /// Read the password from this file (first line) instead of $MILLRACE_PASSWORD.
        #[arg(long)]
        password_file: Option<std::path::PathBuf>,
        /// SCRAM-SHA-256 or SCRAM-SHA-512.
        #[arg(long, default_value = "SCRAM-SHA-512")]
        mechanism: String,
        /// PBKDF2 iterations (4096 to 16384).
        #[arg(long, default_value_t = 8192)]
        iterations: u32,
    },
    /// Remove a user's credential for one mechanism.
    Delete {
        /// User name.
        name: String,
        /// SCRAM-SHA-256 or SCRAM-SHA-512.
        #[arg(long, default_value = "SCRAM-SHA-512")]
        mechanism: String,
    },
    /// Users and their mechanisms and iteration counts (never a key or password).
    List {
        /// Only these users.
        names: Vec<String>,
    },
}

fn mechanism(name: &str) -> anyhow::Result<Mechanism> {
    Mechanism::from_name(name).with_context(|| format!("unknown mechanism {name}: use SCRAM-SHA-256 or SCRAM-SHA-512"))
}

/// The password: from a file, or from `$MILLRACE_PASSWORD` (never a command-line argument,
/// which other users of the machine can read in the process list).
fn password(file: Option<&std::path::Path>) -> anyhow::Result<String> {
    let password = match file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading the password from {}", path.display()))?
            .lines()
            .next()
            .unwrap_or_default()
            .to_string(),
        None => std::env::var("MILLRACE_PASSWORD")
            .context("give the password in $MILLRACE_PASSWORD or with --password-file")?,
    };
    if password.is_empty() {
        bail!("the password is empty");
    }
    Ok(password)
}

/// Sets user `name`'s `mechanism` credential from `password` (creating the user if new): salted
/// here with a fresh random salt and iterated `iterations` times.
pub async fn set_credential(
    conn: &mut Connection,
    name: &str,
    password: &str,
    mechanism: Mechanism,
    iterations: u32,
) -> anyhow::Result<()> {
    let mut salt = vec![0u8; SALT_LEN];
    OsRandom.fill(&mut salt).map_err(|e| anyhow::anyhow!("generating a salt: {e}"))?;
    let salted = mechanism.salted_password(password.as_bytes(), &salt, iterations);
    let upsertion = ScramCredentialUpsertion::default()
        .with_name(StrBytes::from_string(name.to_string()))
        .with_mechanism(mechanism.code())
        .with_iterations(i32::try_from(iterations).context("iterations")?)
        .with_salt(salt.into())
        .with_salted_password(salted.into());
    let request = AlterUserScramCredentialsRequest::default().with_upsertions(vec![upsertion]);
    let response = conn.request(0, &request, TIMEOUT).await?;
    for r in &response.results {
        check(r.error_code, r.error_message.as_ref(), &format!("setting {mechanism} for {}", r.user))?;
    }
    Ok(())
}

/// Runs a user subcommand.
pub async fn run(args: UserArgs) -> anyhow::Result<()> {
    let mut conn = args.client.client()?.connect().await?;
    match args.command {
        UserCommand::Create { name, password_file, mechanism: m, iterations } => {
            let mechanism = mechanism(&m)?;
            let password = password(password_file.as_deref())?;
            set_credential(&mut conn, &name, &password, mechanism, iterations).await?;
            println!("Set {mechanism} credentials for user {name} ({iterations} iterations).");
        }
        UserCommand::Delete { name, mechanism: m } => {
            let mechanism = mechanism(&m)?;
            let deletion = ScramCredentialDeletion::default()
                .with_name(StrBytes::from_string(name.clone()))
                .with_mechanism(mechanism.code());
            let request = AlterUserScramCredentialsRequest::default().with_deletions(vec![deletion]);
            let response = conn.request(0, &request, TIMEOUT).await?;
            for r in &response.results {
                check(r.error_code, r.error_message.as_ref(), &format!("deleting {mechanism} for {}", r.user))?;
            }
            println!("Deleted {mechanism} credentials of user {name}.");
        }
        UserCommand::List { names } => {
            let users = (!names.is_empty())
                .then(|| names.into_iter().map(|n| UserName::default().with_name(StrBytes::from_string(n))).collect());
            let request = DescribeUserScramCredentialsRequest::default().with_users(users);
            let response = conn.request(0, &request, TIMEOUT).await?;
            check(response.error_code, response.error_message.as_ref(), "DescribeUserScramCredentials")?;
            for r in &response.results {
                check(r.error_code, r.error_message.as_ref(), &format!("user {}", r.user))?;
                let credentials: Vec<String> = r
                    .credential_infos
                    .iter()
                    .map(|c| {
                        let name = Mechanism::from_code(c.mechanism).map_or("UNKNOWN", Mechanism::name);
                        format!("{name}=[iterations={}]", c.iterations)
                    })
                    .collect();
                println!("User: {}\t{}", r.user, credentials.join(","));
            }
        }
    }
    Ok(())
}
