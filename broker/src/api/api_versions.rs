//! ApiVersions: which APIs and versions this broker speaks.

use super::context::{Reply, RequestContext};
use super::{Handler, SUPPORTED_APIS};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
use std::sync::Arc;

fn api_list() -> Vec<ApiVersion> {
    SUPPORTED_APIS
        .iter()
        .map(|key| {
            ApiVersion::default()
                .with_api_key(*key as i16)
                .with_min_version(0)
                .with_max_version(key.valid_versions().max)
        })
        .collect()
}

impl<C: Send + Sync + 'static> Handler<C> for ApiVersionsRequest {
    async fn handle(_ctx: &Arc<C>, _rc: &RequestContext, _request: ApiVersionsRequest) -> Reply<ApiVersionsResponse> {
        Reply::Now(ApiVersionsResponse::default().with_api_keys(api_list()))
    }
}

/// The v0 answer to an ApiVersions version newer than we know (KIP-511).
pub fn unsupported_version_response() -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_error_code(ResponseError::UnsupportedVersion.code()).with_api_keys(api_list())
}
