//! SASL/PLAIN (RFC 4616) as Kafka accepts it, checked against the SCRAM credential store.

use super::{PlainError, ScramCredential, MAX_MESSAGE_LEN, MAX_USERNAME_LEN};

/// Splits `[authzid] NUL authcid NUL passwd` into `(authzid, username, password)`, borrowed
/// from `msg`. Kafka requires exactly three fields, a non-empty username and password, and an
/// authzid that is empty or equal to the username.
pub fn parse_plain(msg: &[u8]) -> Result<(&str, &str, &str), PlainError> {
    if msg.len() > MAX_MESSAGE_LEN {
        return Err(PlainError::MessageTooLarge(msg.len()));
    }
    let text = std::str::from_utf8(msg).map_err(|_| PlainError::Malformed("not UTF-8"))?;
    let mut fields = text.split('\0');
    let (Some(authzid), Some(username), Some(password), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(PlainError::Malformed("expected three NUL-separated fields"));
    };
    if username.is_empty() {
        return Err(PlainError::Malformed("empty username"));
    }
    if password.is_empty() {
        return Err(PlainError::Malformed("empty password"));
    }
    if username.len() > MAX_USERNAME_LEN || authzid.len() > MAX_USERNAME_LEN {
        return Err(PlainError::UsernameTooLong);
    }
    if !authzid.is_empty() && authzid != username {
        return Err(PlainError::AuthzidMismatch);
    }
    Ok((authzid, username, password))
}

/// Checks a PLAIN password against the user's stored SCRAM credential by re-deriving its
/// StoredKey with the stored salt and iterations (constant-time comparison).
pub fn verify_plain(credential: &ScramCredential, password: &str) -> Result<(), PlainError> {
    if credential.verify_password(password) {
        Ok(())
    } else {
        Err(PlainError::InvalidCredentials)
    }
}
