//! SaslHandshake and SaslAuthenticate as the router sees them: only once a connection has no
//! login left to do — it logged in already, or its listener does not use SASL. The login
//! itself is the listener's business (`server::sasl`), before any request reaches a handler.

use super::context::{Reply, RequestContext};
use super::Handler;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use std::sync::Arc;

impl<C: Send + Sync + 'static> Handler<C> for SaslHandshakeRequest {
    async fn handle(
        _ctx: &Arc<C>,
        _rc: &RequestContext,
        _request: SaslHandshakeRequest,
    ) -> Reply<SaslHandshakeResponse> {
        // No mechanism is on offer here: either the listener has no SASL or the login is done
        // (re-authentication is not offered: SaslAuthenticate answers a session lifetime of 0).
        Reply::Now(SaslHandshakeResponse::default().with_error_code(ResponseError::IllegalSaslState.code()))
    }
}

impl<C: Send + Sync + 'static> Handler<C> for SaslAuthenticateRequest {
    async fn handle(
        _ctx: &Arc<C>,
        _rc: &RequestContext,
        _request: SaslAuthenticateRequest,
    ) -> Reply<SaslAuthenticateResponse> {
        Reply::Now(SaslAuthenticateResponse::default().with_error_code(ResponseError::IllegalSaslState.code()))
    }
}
