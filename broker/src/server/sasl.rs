//! SASL on a listener: the SaslHandshake / SaslAuthenticate exchange a connection must finish
//! before anything but ApiVersions is answered (Kafka's SaslServerAuthenticator). Pure: it
//! takes request frames and returns response frames; the connection decides when to send them,
//! delays failures and closes.

use crate::api::Principal;
use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    ApiKey, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;
use millrace_protocol::message::{self, RequestPrelude};
use millrace_protocol::scram::{
    parse_plain, verify_plain, Mechanism, OsRandom, ScramCredential, ScramServer, ScramSession,
};
use std::sync::Arc;

/// What the authenticator made of one frame.
#[derive(Debug)]
pub(crate) enum Step {
    /// Not a SASL request: the caller routes it (only ApiVersions is allowed before login).
    NotSasl,
    /// Send this response; the exchange goes on.
    Continue(Bytes),
    /// Send this response; the connection is now `principal`'s.
    Authenticated(Bytes, Principal),
    /// Send this response after the failure delay, then close. `reason` is for the log only:
    /// the client learns nothing but that authentication failed.
    Failed(Bytes, String),
}

/// Listener-wide SASL settings: the mechanisms offered and the per-mechanism SCRAM servers
/// (whose secrets key the fake salts of unknown users for the broker's lifetime).
pub(crate) struct SaslSettings {
    mechanisms: Vec<String>,
    scram: Vec<ScramServer>,
}

impl SaslSettings {
    pub(crate) fn new(mechanisms: Vec<String>) -> Result<SaslSettings, String> {
        let scram = Mechanism::ALL
            .into_iter()
            .filter(|m| mechanisms.iter().any(|name| name == m.name()))
            .map(|m| ScramServer::generate(m, &mut OsRandom).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SaslSettings { mechanisms, scram })
    }
}

enum State {
    AwaitingHandshake,
    AwaitingPlain,
    Scram(Box<ScramSession>),
    Done,
}

/// One connection's login.
pub(crate) struct Authenticator {
    settings: Arc<SaslSettings>,
    state: State,
}

impl Authenticator {
    pub(crate) fn new(settings: Arc<SaslSettings>) -> Authenticator {
        Authenticator { settings, state: State::AwaitingHandshake }
    }

    /// Handles `frame` if it is a SASL request. `lookup` finds a user's stored credential.
    pub(crate) fn step(
        &mut self,
        frame: &Bytes,
        lookup: impl Fn(&str, Mechanism) -> Option<ScramCredential>,
    ) -> Result<Step, String> {
        let prelude = RequestPrelude::read(frame).map_err(|e| e.to_string())?;
        let api = ApiKey::try_from(prelude.api_key).ok();
        let mut body = frame.clone();
        let version = prelude.version;
        match api {
            Some(ApiKey::SaslHandshake) => {
                let valid = ApiKey::SaslHandshake.valid_versions();
                // v0 hands over to raw, unframed tokens, which this broker does not speak. It is
                // still advertised: librdkafka derives SASL support from a range reaching v0, and
                // then uses v1 like every current client.
                if version < 1 || version > valid.max {
                    return Err(format!("SaslHandshake v{version} is not supported (v1 only); closing connection"));
                }
                message::decode_request_header(&mut body, ApiKey::SaslHandshake, version).map_err(|e| e.to_string())?;
                let request: SaslHandshakeRequest =
                    message::decode_request(&mut body, ApiKey::SaslHandshake, version).map_err(|e| e.to_string())?;
                Ok(self.handshake(&request, prelude.correlation_id, version))
            }
            Some(ApiKey::SaslAuthenticate) => {
                let valid = ApiKey::SaslAuthenticate.valid_versions();
                if version < valid.min || version > valid.max {
                    return Err(format!("SaslAuthenticate v{version} is not supported; closing connection"));
                }
                message::decode_request_header(&mut body, ApiKey::SaslAuthenticate, version)
                    .map_err(|e| e.to_string())?;
                let request: SaslAuthenticateRequest =
                    message::decode_request(&mut body, ApiKey::SaslAuthenticate, version).map_err(|e| e.to_string())?;
                Ok(self.authenticate(&request.auth_bytes, prelude.correlation_id, version, lookup))
            }
            _ => Ok(Step::NotSasl),
        }
    }

    fn handshake(&mut self, request: &SaslHandshakeRequest, correlation_id: i32, version: i16) -> Step {
        let offered: Vec<StrBytes> =
            self.settings.mechanisms.iter().map(|m| StrBytes::from_string(m.clone())).collect();
        let respond = |error: Option<ResponseError>| {
            let response = SaslHandshakeResponse::default()
                .with_error_code(error.map_or(0, |e| e.code()))
                .with_mechanisms(offered.clone());
            message::encode_response(ApiKey::SaslHandshake, version, correlation_id, &response).unwrap_or_default()
        };
        if !matches!(self.state, State::AwaitingHandshake) {
            self.state = State::Done;
            return Step::Failed(respond(Some(ResponseError::IllegalSaslState)), "a second SaslHandshake".into());
        }
        let wanted = request.mechanism.as_str();
        if !self.settings.mechanisms.iter().any(|m| m == wanted) {
            // The client may retry with one of the offered mechanisms on a new connection.
            self.state = State::Done;
            return Step::Failed(
                respond(Some(ResponseError::UnsupportedSaslMechanism)),
                format!("mechanism {wanted:?} is not enabled on this listener"),
            );
        }
        self.state = match Mechanism::from_name(wanted) {
            None => State::AwaitingPlain,
            Some(mechanism) => match self.settings.scram.iter().find(|s| s.mechanism() == mechanism) {
                Some(server) => State::Scram(Box::new(ScramSession::new(server.clone()))),
                None => State::Done,
            },
        };
        Step::Continue(respond(None))
    }

    fn authenticate(
        &mut self,
        token: &[u8],
        correlation_id: i32,
        version: i16,
        lookup: impl Fn(&str, Mechanism) -> Option<ScramCredential>,
    ) -> Step {
        let respond = |bytes: Vec<u8>, error: Option<ResponseError>| {
            let response = SaslAuthenticateResponse::default()
                .with_error_code(error.map_or(0, |e| e.code()))
                // The same words whatever went wrong: no hint whether the user exists.
                .with_error_message(
                    error.map(|_| StrBytes::from_static_str("Authentication failed: invalid credentials")),
                )
                .with_auth_bytes(Bytes::from(bytes));
            message::encode_response(ApiKey::SaslAuthenticate, version, correlation_id, &response).unwrap_or_default()
        };
        let failed =
            |reason: String| Step::Failed(respond(Vec::new(), Some(ResponseError::SaslAuthenticationFailed)), reason);
        match std::mem::replace(&mut self.state, State::Done) {
            State::AwaitingPlain => match parse_plain(token) {
                Err(e) => failed(format!("PLAIN: {e}")),
                Ok((_, user, password)) => {
                    // A user with either SCRAM credential may log in with PLAIN.
                    let credential = Mechanism::ALL.into_iter().find_map(|m| lookup(user, m));
                    match credential.map(|c| verify_plain(&c, password)) {
                        Some(Ok(())) => Step::Authenticated(respond(Vec::new(), None), Principal::user(user)),
                        _ => failed(format!("PLAIN: invalid credentials for {user:?}")),
                    }
                }
            },
            State::Scram(mut session) if !session.is_complete() => {
                let mechanism = session.mechanism();
                let first = session.is_awaiting_first();
                if first {
                    match session.client_first(token, |user| lookup(user, mechanism), &mut OsRandom) {
                        Ok(server_first) => {
                            self.state = State::Scram(session);
                            Step::Continue(respond(server_first, None))
                        }
                        Err(e) => failed(format!("{mechanism}: {e}")),
                    }
                } else {
                    match session.client_final(token) {
                        Ok((user, server_final)) => {
                            Step::Authenticated(respond(server_final, None), Principal::user(&user))
                        }
                        Err(e) => failed(format!("{mechanism}: {e}")),
                    }
                }
            }
            State::AwaitingHandshake | State::Scram(_) | State::Done => Step::Failed(
                respond(Vec::new(), Some(ResponseError::IllegalSaslState)),
                "SaslAuthenticate out of order".into(),
            ),
        }
    }
}

#[cfg(test)]
mod tests;
