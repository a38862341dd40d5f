//! Errors of the SCRAM and PLAIN exchanges. None carries a password, proof or key; the ones
//! that reach a client are deliberately vague about why authentication failed.

use kafka_protocol::error::ResponseError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    #[error("unsupported SASL mechanism")]
    UnsupportedMechanism,
    #[error("SASL message of {0} bytes exceeds the limit")]
    MessageTooLarge(usize),
    #[error("malformed SCRAM message: {0}")]
    Malformed(&'static str),
    #[error("channel binding is not supported")]
    ChannelBindingNotSupported,
    #[error("SCRAM extensions are not supported")]
    UnsupportedExtension,
    #[error("authorization id differs from the username")]
    AuthzidMismatch,
    #[error("username too long")]
    UsernameTooLong,
    #[error("nonce too long")]
    NonceTooLong,
    #[error("channel binding data does not match the GS2 header")]
    ChannelBindingMismatch,
    #[error("nonce does not match the one the server issued")]
    NonceMismatch,
    /// A wrong proof and an unknown user end here alike, so the client cannot tell them apart.
    #[error("authentication failed: invalid credentials")]
    InvalidCredentials,
    #[error("SASL message out of order for the exchange's state")]
    IllegalState,
    #[error("iterations {0} outside the accepted range 4096..=16384")]
    InvalidIterations(u32),
    #[error("invalid SCRAM credential: {0}")]
    InvalidCredentialParameters(&'static str),
    #[error("random source unavailable")]
    RandomUnavailable,
    /// The client's check of the server: a server without the credential cannot sign.
    #[error("the server's SCRAM signature is wrong: it does not hold this user's credential")]
    ServerSignatureMismatch,
}

impl ScramError {
    /// The Kafka error code a SaslAuthenticate (or credential admin) response carries.
    pub fn error_code(&self) -> ResponseError {
        match self {
            ScramError::UnsupportedMechanism => ResponseError::UnsupportedSaslMechanism,
            ScramError::IllegalState => ResponseError::IllegalSaslState,
            ScramError::InvalidIterations(_) | ScramError::InvalidCredentialParameters(_) => {
                ResponseError::UnacceptableCredential
            }
            ScramError::RandomUnavailable | ScramError::ServerSignatureMismatch => ResponseError::UnknownServerError,
            ScramError::MessageTooLarge(_)
            | ScramError::Malformed(_)
            | ScramError::ChannelBindingNotSupported
            | ScramError::UnsupportedExtension
            | ScramError::AuthzidMismatch
            | ScramError::UsernameTooLong
            | ScramError::NonceTooLong
            | ScramError::ChannelBindingMismatch
            | ScramError::NonceMismatch
            | ScramError::InvalidCredentials => ResponseError::SaslAuthenticationFailed,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlainError {
    #[error("SASL/PLAIN message of {0} bytes exceeds the limit")]
    MessageTooLarge(usize),
    #[error("malformed SASL/PLAIN message: {0}")]
    Malformed(&'static str),
    #[error("username too long")]
    UsernameTooLong,
    #[error("authorization id differs from the username")]
    AuthzidMismatch,
    #[error("authentication failed: invalid credentials")]
    InvalidCredentials,
}

impl PlainError {
    /// Every PLAIN failure is an authentication failure to Kafka clients.
    pub fn error_code(&self) -> ResponseError {
        ResponseError::SaslAuthenticationFailed
    }
}
