//! Parsing of the client's SCRAM messages (RFC 5802 §7), bounded and strict: only the
//! `n` GS2 flag, no `m=` or other extensions, saslnames with exactly `=2C`/`=3D` escapes.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::{ScramError, MAX_MESSAGE_LEN, MAX_NONCE_LEN, MAX_USERNAME_LEN};

/// A parsed client-first-message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFirst {
    /// `n,,` or `n,a=<authzid>,`, echoed back base64-encoded in the client-final `c=`.
    pub gs2_header: String,
    pub username: String,
    pub client_nonce: String,
    /// client-first-message-bare, the first part of AuthMessage.
    pub bare: String,
}

/// A parsed client-final-message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientFinal<'a> {
    pub channel_binding: Vec<u8>,
    pub nonce: &'a str,
    pub proof: Vec<u8>,
    /// client-final-message-without-proof, the last part of AuthMessage.
    pub without_proof: &'a str,
}

fn bounded_utf8(msg: &[u8]) -> Result<&str, ScramError> {
    if msg.len() > MAX_MESSAGE_LEN {
        return Err(ScramError::MessageTooLarge(msg.len()));
    }
    std::str::from_utf8(msg).map_err(|_| ScramError::Malformed("not UTF-8"))
}

pub fn parse_client_first(msg: &[u8]) -> Result<ClientFirst, ScramError> {
    let text = bounded_utf8(msg)?;
    let (flag, rest) = text.split_once(',').ok_or(ScramError::Malformed("missing GS2 header"))?;
    match flag {
        "n" => {}
        // Kafka does not do channel binding; a client that wants it (or thinks the server
        // supports it) is refused rather than silently downgraded.
        "y" => return Err(ScramError::ChannelBindingNotSupported),
        f if f.starts_with("p=") => return Err(ScramError::ChannelBindingNotSupported),
        _ => return Err(ScramError::Malformed("GS2 channel binding flag")),
    }
    let (authzid_field, bare) = rest.split_once(',').ok_or(ScramError::Malformed("missing GS2 authzid separator"))?;
    let authzid = match authzid_field {
        "" => None,
        a => Some(unescape_saslname(a.strip_prefix("a=").ok_or(ScramError::Malformed("GS2 authzid"))?)?),
    };
    let gs2_header = text[..text.len() - bare.len()].to_owned();

    let mut attrs = bare.split(',');
    let first = attrs.next().unwrap_or_default();
    if first.starts_with("m=") {
        return Err(ScramError::UnsupportedExtension);
    }
    let username = unescape_saslname(first.strip_prefix("n=").ok_or(ScramError::Malformed("expected n= username"))?)?;
    let client_nonce =
        attrs.next().and_then(|a| a.strip_prefix("r=")).ok_or(ScramError::Malformed("expected r= nonce"))?;
    check_nonce(client_nonce, MAX_NONCE_LEN)?;
    // Kafka's only extension is `tokenauth` (delegation tokens), which this broker lacks;
    // anything else after the nonce is an extension too.
    if attrs.next().is_some() {
        return Err(ScramError::UnsupportedExtension);
    }
    if authzid.as_deref().is_some_and(|a| a != username) {
        return Err(ScramError::AuthzidMismatch);
    }
    Ok(ClientFirst { gs2_header, username, client_nonce: client_nonce.to_owned(), bare: bare.to_owned() })
}

pub(crate) fn parse_client_final(msg: &[u8]) -> Result<ClientFinal<'_>, ScramError> {
    let text = bounded_utf8(msg)?;
    // The proof is always the last attribute (RFC 5802 §7).
    let (without_proof, proof) = text.rsplit_once(",p=").ok_or(ScramError::Malformed("expected p= proof"))?;
    if proof.contains(',') {
        return Err(ScramError::Malformed("attribute after the proof"));
    }
    let proof = STANDARD.decode(proof).map_err(|_| ScramError::Malformed("proof is not base64"))?;

    let mut attrs = without_proof.split(',');
    let channel_binding =
        attrs.next().and_then(|a| a.strip_prefix("c=")).ok_or(ScramError::Malformed("expected c= channel binding"))?;
    let channel_binding =
        STANDARD.decode(channel_binding).map_err(|_| ScramError::Malformed("channel binding is not base64"))?;
    let nonce = attrs.next().and_then(|a| a.strip_prefix("r=")).ok_or(ScramError::Malformed("expected r= nonce"))?;
    if attrs.next().is_some() {
        return Err(ScramError::UnsupportedExtension);
    }
    Ok(ClientFinal { channel_binding, nonce, proof, without_proof })
}

/// RFC 5802 nonce: printable ASCII except `,`.
pub(crate) fn check_nonce(nonce: &str, max: usize) -> Result<(), ScramError> {
    if nonce.len() > max {
        return Err(ScramError::NonceTooLong);
    }
    if nonce.is_empty() || !nonce.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',') {
        return Err(ScramError::Malformed("nonce characters"));
    }
    Ok(())
}

/// Decodes a saslname: `=2C` is `,`, `=3D` is `=`, any other `=` is an error.
pub fn unescape_saslname(raw: &str) -> Result<String, ScramError> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(at) = rest.find('=') {
        out.push_str(&rest[..at]);
        let escape = rest.get(at..at + 3);
        match escape {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(ScramError::Malformed("saslname escape")),
        }
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    if out.is_empty() {
        return Err(ScramError::Malformed("empty username"));
    }
    if out.len() > MAX_USERNAME_LEN {
        return Err(ScramError::UsernameTooLong);
    }
    if out.contains('\0') {
        return Err(ScramError::Malformed("NUL in username"));
    }
    Ok(out)
}

/// Encodes a name as a saslname (the inverse of [`unescape_saslname`]).
pub fn escape_saslname(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}
