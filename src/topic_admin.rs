//! `millrace topic alter` (IncrementalAlterConfigs, as `kafka-configs --alter` sends it) and
//! `millrace topic delete-records` (DeleteRecords through librdkafka, which finds each
//! partition's leader), the two a disk-pressure incident needs.

use crate::client::Client;
use crate::cluster::check;
use anyhow::{anyhow, bail, Context};
use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::IncrementalAlterConfigsRequest;
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::AdminOptions;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(15);
/// Kafka's resource types and IncrementalAlterConfigs operations.
pub(crate) const RESOURCE_TOPIC: i8 = 2;
pub(crate) const RESOURCE_BROKER: i8 = 4;
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;

/// Settings to set (`KEY=VALUE`) and to return to their defaults (`KEY`).
#[derive(clap::Args, Debug)]
pub struct ConfigChanges {
    /// Setting to set, Kafka style (e.g. retention.ms=3600000); repeatable.
    #[arg(long = "add-config", value_name = "KEY=VALUE")]
    pub add: Vec<String>,
    /// Setting to return to its default; repeatable.
    #[arg(long = "delete-config", value_name = "KEY")]
    pub delete: Vec<String>,
}

impl ConfigChanges {
    /// The changes as IncrementalAlterConfigs operations.
    fn operations(&self) -> anyhow::Result<Vec<AlterableConfig>> {
        if self.add.is_empty() && self.delete.is_empty() {
            bail!("nothing to change: give --add-config KEY=VALUE or --delete-config KEY");
        }
        let mut ops = Vec::new();
        for entry in &self.add {
            let (key, value) = entry
                .split_once('=')
                .ok_or_else(|| anyhow!("--add-config `{entry}` is not KEY=VALUE, e.g. retention.ms=3600000"))?;
            ops.push(
                AlterableConfig::default()
                    .with_name(StrBytes::from_string(key.trim().to_string()))
                    .with_config_operation(OP_SET)
                    .with_value(Some(StrBytes::from_string(value.trim().to_string()))),
            );
        }
        for key in &self.delete {
            ops.push(
                AlterableConfig::default()
                    .with_name(StrBytes::from_string(key.trim().to_string()))
                    .with_config_operation(OP_DELETE),
            );
        }
        Ok(ops)
    }

    /// What was asked, for the confirmation line.
    fn summary(&self) -> String {
        let mut parts: Vec<String> = self.add.iter().map(|a| format!("set {}", a.trim())).collect();
        parts.extend(self.delete.iter().map(|d| format!("reset {}", d.trim())));
        parts.join(", ")
    }
}

/// Alters the settings of a topic (`RESOURCE_TOPIC`) or of a broker or, with an empty name, of
/// every broker (`RESOURCE_BROKER`).
pub async fn alter_configs(
    client: &Client,
    resource_type: i8,
    name: &str,
    changes: &ConfigChanges,
) -> anyhow::Result<String> {
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
        .with_resource_type(resource_type)
        .with_resource_name(StrBytes::from_string(name.to_string()))
        .with_configs(changes.operations()?)]);
    let mut conn = client.connect().await?;
    let response = conn.request(1, &request, TIMEOUT).await?;
    for r in &response.responses {
        check(r.error_code, r.error_message.as_ref(), "IncrementalAlterConfigs")?;
    }
    Ok(changes.summary())
}

/// Deletes the records of `topic` before `before` (-1: everything committed) in `partitions`
/// (all when empty); prints each partition's new log start offset.
pub async fn delete_records(client: &Client, topic: &str, partitions: &[i32], before: i64) -> anyhow::Result<()> {
    let mut partitions = partitions.to_vec();
    if partitions.is_empty() {
        let (owned, name) = (client.clone(), topic.to_string());
        partitions = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<i32>> {
            let consumer: BaseConsumer = owned.rdkafka_config("millrace-topic").create()?;
            let metadata = consumer.fetch_metadata(Some(&name), TIMEOUT).context("fetching metadata")?;
            let t = metadata.topics().first().ok_or_else(|| anyhow!("topic {name} does not exist"))?;
            if let Some(e) = t.error() {
                bail!("topic {name}: {e:?}");
            }
            Ok(t.partitions().iter().map(|p| p.id()).collect())
        })
        .await??;
    }
    let mut list = TopicPartitionList::new();
    let offset = if before == -1 { Offset::End } else { Offset::Offset(before) };
    for p in &partitions {
        list.add_partition_offset(topic, *p, offset)?;
    }
    let admin: rdkafka::admin::AdminClient<_> = client.rdkafka_config("millrace-topic").create()?;
    let options = AdminOptions::new().operation_timeout(Some(TIMEOUT)).request_timeout(Some(TIMEOUT));
    let result = admin.delete_records(&list, &options).await.context("DeleteRecords")?;
    let mut failed = Vec::new();
    for element in result.elements() {
        match element.error() {
            Ok(()) => {
                let start = match element.offset() {
                    Offset::Offset(o) => o.to_string(),
                    other => format!("{other:?}"),
                };
                println!("{}-{}\tLogStartOffset: {start}", element.topic(), element.partition());
            }
            Err(e) => failed.push(format!("{}-{}: {e}", element.topic(), element.partition())),
        }
    }
    if !failed.is_empty() {
        bail!("deleting records failed for {}", failed.join("; "));
    }
    Ok(())
}
