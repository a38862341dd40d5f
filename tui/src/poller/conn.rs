//! One cached connection per broker address, with the API versions the broker advertised, and
//! every request counted.

use crate::model::RequestCounts;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest};
use kafka_protocol::protocol::Request;
use millrace_protocol::client::Security;
use millrace_protocol::{ClientError, Connection};
use std::collections::HashMap;
use std::time::Duration;

/// Client id on every request, so broker logs and quotas name this tool.
const CLIENT_ID: &str = "millrace-top";

/// ApiVersions v2: the newest non-flexible version, so a broker that answers an unknown
/// version with a v0 body (KIP-511) is still decoded, and every broker since Kafka 2.0 has it.
const API_VERSIONS_VERSION: i16 = 2;

/// Every Kafka API a refresh sends (besides ApiVersions); confirmed changes add ElectLeaders
/// and OffsetCommit.
pub const APIS_USED: [ApiKey; 10] = [
    ApiKey::Metadata,
    ApiKey::DescribeCluster,
    ApiKey::DescribeQuorum,
    ApiKey::ListOffsets,
    ApiKey::ListGroups,
    ApiKey::FindCoordinator,
    ApiKey::DescribeGroups,
    ApiKey::OffsetFetch,
    ApiKey::DescribeConfigs,
    ApiKey::Fetch,
];

/// The version ranges a broker advertised, per API key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Versions {
    ranges: HashMap<i16, (i16, i16)>,
}

impl Versions {
    /// What Kafka 2.x brokers offer of [`APIS_USED`]: no DescribeCluster, OffsetFetch up to v7
    /// (one group per request).
    pub fn kafka_2() -> Versions {
        Versions::from_ranges([
            (ApiKey::Metadata, 0, 9),
            (ApiKey::ListOffsets, 0, 5),
            (ApiKey::ListGroups, 0, 3),
            (ApiKey::FindCoordinator, 0, 3),
            (ApiKey::DescribeGroups, 0, 4),
            (ApiKey::OffsetFetch, 0, 7),
            (ApiKey::DescribeConfigs, 0, 2),
            (ApiKey::Fetch, 0, 11),
        ])
    }

    /// Versions from (api key, min, max) triples.
    pub fn from_ranges(ranges: impl IntoIterator<Item = (ApiKey, i16, i16)>) -> Versions {
        Versions { ranges: ranges.into_iter().map(|(key, min, max)| (key as i16, (min, max))).collect() }
    }

    /// A broker that speaks every version this codec knows (for planning and tests).
    pub fn latest() -> Versions {
        Versions::from_ranges(
            APIS_USED.into_iter().map(|key| (key, key.valid_versions().min, key.valid_versions().max)),
        )
    }

    /// The highest version of `api` both sides speak, at most `preferred`; None when the broker
    /// does not offer the API or no version is common.
    pub fn pick(&self, api: ApiKey, preferred: i16) -> Option<i16> {
        let (min, max) = self.ranges.get(&(api as i16)).copied()?;
        let codec = api.valid_versions();
        let high = max.min(preferred).min(codec.max);
        let low = min.max(codec.min);
        (high >= low).then_some(high)
    }
}

/// Name of an API for request counts.
pub fn api_name(key: i16) -> &'static str {
    match ApiKey::try_from(key) {
        Ok(ApiKey::Metadata) => "Metadata",
        Ok(ApiKey::DescribeCluster) => "DescribeCluster",
        Ok(ApiKey::DescribeQuorum) => "DescribeQuorum",
        Ok(ApiKey::ListOffsets) => "ListOffsets",
        Ok(ApiKey::ListGroups) => "ListGroups",
        Ok(ApiKey::FindCoordinator) => "FindCoordinator",
        Ok(ApiKey::DescribeGroups) => "DescribeGroups",
        Ok(ApiKey::OffsetFetch) => "OffsetFetch",
        Ok(ApiKey::DescribeConfigs) => "DescribeConfigs",
        Ok(ApiKey::ApiVersions) => "ApiVersions",
        Ok(ApiKey::Fetch) => "Fetch",
        Ok(ApiKey::ElectLeaders) => "ElectLeaders",
        Ok(ApiKey::OffsetCommit) => "OffsetCommit",
        _ => "other",
    }
}

/// A connection to one broker and what it speaks.
pub struct Conn {
    peer: Connection,
    /// Versions the broker advertised.
    pub versions: Versions,
}

impl Conn {
    /// Connects and asks ApiVersions; both are bounded by `timeout`.
    pub async fn open(
        addr: &str,
        timeout: Duration,
        security: &Security,
        counts: &mut RequestCounts,
    ) -> Result<Conn, ClientError> {
        let mut peer = Connection::connect_with(addr, timeout, security).await?.with_client_id(CLIENT_ID);
        counts.add(api_name(ApiVersionsRequest::KEY));
        let answer = peer.request(API_VERSIONS_VERSION, &ApiVersionsRequest::default(), timeout).await?;
        if answer.error_code != 0 {
            return Err(ClientError::Protocol {
                addr: addr.to_string(),
                reason: format!("ApiVersions answered error {}", answer.error_code),
            });
        }
        let versions =
            Versions { ranges: answer.api_keys.iter().map(|k| (k.api_key, (k.min_version, k.max_version))).collect() };
        Ok(Conn { peer, versions })
    }

    /// Sends one request, counted, bounded by `timeout`. After an error the connection must be
    /// dropped.
    pub async fn call<R: Request>(
        &mut self,
        version: i16,
        request: &R,
        timeout: Duration,
        counts: &mut RequestCounts,
    ) -> Result<R::Response, ClientError> {
        counts.add(api_name(R::KEY));
        self.peer.request(version, request, timeout).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pick_takes_the_highest_common_version() {
        let versions = Versions::from_ranges([(ApiKey::OffsetFetch, 0, 7), (ApiKey::ListOffsets, 0, 9)]);
        assert_eq!(versions.pick(ApiKey::OffsetFetch, 8), Some(7), "broker max below ours");
        assert_eq!(versions.pick(ApiKey::ListOffsets, 7), Some(7), "ours below broker max");
        assert_eq!(versions.pick(ApiKey::DescribeCluster, 2), None, "not offered");
        let old = Versions::from_ranges([(ApiKey::ListOffsets, 0, 0)]);
        assert_eq!(old.pick(ApiKey::ListOffsets, 7), None, "v0 only: the codec starts at v1");
    }
}
