//! Tests: the RFC 7677 vector through the server, round trips against a small test-only
//! client, and every refusal path.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use kafka_protocol::error::ResponseError;

use super::*;

const SECRET: [u8; 32] = [7u8; 32];

/// Deterministic "randomness" for tests that do not care about the values.
fn counter_rng() -> impl FnMut(&mut [u8]) {
    let mut n = 0u8;
    move |buf: &mut [u8]| {
        for b in buf {
            n = n.wrapping_add(1);
            *b = n;
        }
    }
}

/// The client half of the exchange, written from RFC 5802 §3 independently of the server.
struct TestClient {
    mechanism: Mechanism,
    password: String,
    gs2_header: String,
    bare: String,
}

impl TestClient {
    fn new(mechanism: Mechanism, user: &str, password: &str, nonce: &str) -> TestClient {
        TestClient {
            mechanism,
            password: password.to_owned(),
            gs2_header: "n,,".to_owned(),
            bare: format!("n={},r={nonce}", escape_saslname(user)),
        }
    }

    fn first(&self) -> Vec<u8> {
        format!("{}{}", self.gs2_header, self.bare).into_bytes()
    }

    /// Returns (client-final, expected server-final).
    fn last(&self, server_first: &[u8]) -> (String, String) {
        let server_first = std::str::from_utf8(server_first).unwrap();
        let mut nonce = "";
        let mut salt = Vec::new();
        let mut iterations = 0;
        for attr in server_first.split(',') {
            match attr.split_at(2) {
                ("r=", v) => nonce = v,
                ("s=", v) => salt = STANDARD.decode(v).unwrap(),
                ("i=", v) => iterations = v.parse().unwrap(),
                _ => panic!("unexpected attribute {attr}"),
            }
        }
        let m = self.mechanism;
        let salted = m.salted_password(self.password.as_bytes(), &salt, iterations);
        let client_key = m.hmac(&salted, &[b"Client Key"]);
        let stored_key = m.hash(&client_key);
        let server_key = m.hmac(&salted, &[b"Server Key"]);
        let without_proof = format!("c={},r={nonce}", STANDARD.encode(&self.gs2_header));
        let auth = format!("{},{server_first},{without_proof}", self.bare);
        let signature = m.hmac(&stored_key, &[auth.as_bytes()]);
        let proof: Vec<u8> = client_key.iter().zip(&signature).map(|(a, b)| a ^ b).collect();
        let server_signature = m.hmac(&server_key, &[auth.as_bytes()]);
        (format!("{without_proof},p={}", STANDARD.encode(proof)), format!("v={}", STANDARD.encode(server_signature)))
    }
}

fn credential(mechanism: Mechanism, password: &str) -> ScramCredential {
    ScramCredential::new(mechanism, password, b"0123456789abcdef0123456789abcdef", 4096).unwrap()
}

/// Runs a full exchange; `tamper` may rewrite the client-final before the server sees it.
fn exchange(
    mechanism: Mechanism,
    user: &str,
    client_password: &str,
    stored: Option<&ScramCredential>,
    tamper: impl FnOnce(String) -> String,
) -> Result<(String, Vec<u8>, String), ScramError> {
    let server = ScramServer::new(mechanism, SECRET);
    let client = TestClient::new(mechanism, user, client_password, "fyko+d2lbbFgONRv9qkxdawL");
    let (state, server_first) = server.client_first(&client.first(), |_| stored.cloned(), &mut counter_rng())?;
    let (last, expected) = client.last(&server_first);
    let (principal, server_final) = state.client_final(tamper(last).as_bytes())?;
    Ok((principal, server_final, expected))
}

#[test]
fn rfc7677_sha256_vector() {
    let salt = STANDARD.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
    let cred = ScramCredential::new(Mechanism::ScramSha256, "pencil", &salt, 4096).unwrap();
    let server = ScramServer::new(Mechanism::ScramSha256, SECRET);
    let first = parse_client_first(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO").unwrap();
    let (state, server_first) =
        server.server_first_with_nonce(&first, Some(&cred), "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0").unwrap();
    assert_eq!(server_first, b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
    let client = TestClient::new(Mechanism::ScramSha256, "user", "pencil", "rOprNGfwEbeRWgbNEkqO");
    let (client_final, _) = client.last(&server_first);
    assert_eq!(
        client_final,
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
         p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
    );
    let (principal, server_final) = state.client_final(client_final.as_bytes()).unwrap();
    assert_eq!(principal, "user");
    assert_eq!(server_final, b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
}

#[test]
fn sha512_round_trip() {
    let cred = credential(Mechanism::ScramSha512, "s3cret");
    let (principal, server_final, expected) =
        exchange(Mechanism::ScramSha512, "alice", "s3cret", Some(&cred), |m| m).unwrap();
    assert_eq!(principal, "alice");
    assert_eq!(String::from_utf8(server_final).unwrap(), expected);
    assert_eq!(cred.stored_key.len(), 64);
}

#[test]
fn session_round_trip_with_os_randomness() {
    let cred = ScramCredential::generate(Mechanism::ScramSha256, "pw", 8192, &mut OsRandom).unwrap();
    assert_eq!(cred.salt.len(), SALT_LEN);
    let server = ScramServer::generate(Mechanism::ScramSha256, &mut OsRandom).unwrap();
    let mut session = ScramSession::new(server);
    let client = TestClient::new(Mechanism::ScramSha256, "bob", "pw", "abc");
    let server_first =
        session.client_first(&client.first(), |u| (u == "bob").then(|| cred.clone()), &mut OsRandom).unwrap();
    let server_nonce = std::str::from_utf8(&server_first).unwrap()[2..]
        .split(',')
        .next()
        .unwrap()
        .strip_prefix("abc")
        .unwrap()
        .to_owned();
    assert_eq!(STANDARD.decode(server_nonce).unwrap().len(), SERVER_NONCE_BYTES);
    let (last, expected) = client.last(&server_first);
    assert!(!session.is_complete());
    let (principal, server_final) = session.client_final(last.as_bytes()).unwrap();
    assert_eq!((principal.as_str(), server_final), ("bob", expected.into_bytes()));
    assert!(session.is_complete());
    // Nothing more is accepted once the exchange is over.
    let err = session.client_final(last.as_bytes()).unwrap_err();
    assert_eq!(err.error_code(), ResponseError::IllegalSaslState);
}

#[test]
fn session_refuses_out_of_order_messages() {
    let mut session = ScramSession::new(ScramServer::new(Mechanism::ScramSha256, SECRET));
    let err = session.client_final(b"c=biws,r=x,p=AAAA").unwrap_err();
    assert_eq!(err, ScramError::IllegalState);
    assert_eq!(err.error_code(), ResponseError::IllegalSaslState);
    // A failed session stays failed.
    let err = session.client_first(b"n,,n=u,r=abc", |_| None, &mut counter_rng()).unwrap_err();
    assert_eq!(err, ScramError::IllegalState);
}

#[test]
fn wrong_password_fails() {
    let cred = credential(Mechanism::ScramSha256, "right");
    let err = exchange(Mechanism::ScramSha256, "alice", "wrong", Some(&cred), |m| m).unwrap_err();
    assert_eq!(err, ScramError::InvalidCredentials);
    assert_eq!(err.error_code(), ResponseError::SaslAuthenticationFailed);
}

#[test]
fn credential_of_other_mechanism_is_not_used() {
    let cred = credential(Mechanism::ScramSha512, "pw");
    let err = exchange(Mechanism::ScramSha256, "alice", "pw", Some(&cred), |m| m).unwrap_err();
    assert_eq!(err, ScramError::InvalidCredentials);
}

#[test]
fn unknown_user_looks_like_a_known_one_until_final() {
    let known = credential(Mechanism::ScramSha256, "pw");
    let server = ScramServer::new(Mechanism::ScramSha256, SECRET);
    let reply = |user: &str, cred: Option<&ScramCredential>| {
        let msg = format!("n,,n={user},r=abcdef");
        server
            .client_first(msg.as_bytes(), |_| cred.cloned(), &mut counter_rng())
            .map(|(_, bytes)| String::from_utf8(bytes).unwrap())
            .unwrap()
    };
    let shape = |reply: &str| -> Vec<usize> { reply.split(',').map(str::len).collect() };
    let real = reply("alice", Some(&known));
    let fake = reply("mallory", None);
    assert_eq!(shape(&real), shape(&fake));
    assert!(fake.ends_with(",i=4096"), "{fake}");
    // Deterministic per user (a fresh salt each time would give the game away), distinct
    // across users.
    assert_eq!(fake, reply("mallory", None));
    assert_ne!(fake, reply("eve", None));

    let err = exchange(Mechanism::ScramSha256, "mallory", "pw", None, |m| m).unwrap_err();
    assert_eq!(err, ScramError::InvalidCredentials);
    assert_eq!(err.error_code(), ResponseError::SaslAuthenticationFailed);
}

#[test]
fn tampered_nonce_is_refused() {
    let cred = credential(Mechanism::ScramSha256, "pw");
    let err =
        exchange(Mechanism::ScramSha256, "alice", "pw", Some(&cred), |m| m.replacen(",r=f", ",r=g", 1)).unwrap_err();
    assert_eq!(err, ScramError::NonceMismatch);
    assert_eq!(err.error_code(), ResponseError::SaslAuthenticationFailed);
}

#[test]
fn librdkafkas_doubled_client_nonce_passes_the_nonce_check_only() {
    let cred = credential(Mechanism::ScramSha256, "pw");
    let cnonce = "fyko+d2lbbFgONRv9qkxdawL";
    // librdkafka sends r=<client nonce><combined nonce>; the proof is then checked over what
    // it sent (here it was computed over the plain echo, so it fails — at the proof).
    let doubled = |m: String| m.replacen(&format!(",r={cnonce}"), &format!(",r={cnonce}{cnonce}"), 1);
    let err = exchange(Mechanism::ScramSha256, "alice", "pw", Some(&cred), doubled).unwrap_err();
    assert_eq!(err, ScramError::InvalidCredentials);
    let tripled = |m: String| m.replacen(&format!(",r={cnonce}"), &format!(",r={cnonce}{cnonce}{cnonce}"), 1);
    let err = exchange(Mechanism::ScramSha256, "alice", "pw", Some(&cred), tripled).unwrap_err();
    assert_eq!(err, ScramError::NonceMismatch);
}

#[test]
fn tampered_proof_is_refused() {
    let cred = credential(Mechanism::ScramSha256, "pw");
    let flip = |m: String| {
        let (head, proof) = m.rsplit_once(",p=").unwrap();
        let mut bytes = STANDARD.decode(proof).unwrap();
        bytes[0] ^= 1;
        format!("{head},p={}", STANDARD.encode(bytes))
    };
    let err = exchange(Mechanism::ScramSha256, "alice", "pw", Some(&cred), flip).unwrap_err();
    assert_eq!(err, ScramError::InvalidCredentials);
    let short = |m: String| format!("{},p=AAAA", m.rsplit_once(",p=").unwrap().0);
    let err = exchange(Mechanism::ScramSha256, "alice", "pw", Some(&cred), short).unwrap_err();
    assert_eq!(err, ScramError::InvalidCredentials);
}

#[test]
fn wrong_channel_binding_is_refused() {
    let cred = credential(Mechanism::ScramSha256, "pw");
    // "eSws" is "y,,"; the GS2 header sent was "n,,".
    let err = exchange(Mechanism::ScramSha256, "alice", "pw", Some(&cred), |m| m.replacen("c=biws", "c=eSws", 1))
        .unwrap_err();
    assert_eq!(err, ScramError::ChannelBindingMismatch);
    let err = exchange(Mechanism::ScramSha256, "alice", "pw", Some(&cred), |m| m.replacen("c=biws", "c=b!ws", 1))
        .unwrap_err();
    assert!(matches!(err, ScramError::Malformed(_)), "{err}");
}

#[test]
fn channel_binding_flags_other_than_n_are_refused() {
    for msg in [&b"y,,n=user,r=abc"[..], b"p=tls-unique,,n=user,r=abc"] {
        let err = parse_client_first(msg).unwrap_err();
        assert_eq!(err, ScramError::ChannelBindingNotSupported);
        assert_eq!(err.error_code(), ResponseError::SaslAuthenticationFailed);
    }
    assert!(matches!(parse_client_first(b"x,,n=user,r=abc"), Err(ScramError::Malformed(_))));
}

#[test]
fn authzid_must_be_empty_or_the_user() {
    let first = parse_client_first(b"n,a=alice,n=alice,r=abc").unwrap();
    assert_eq!(first.gs2_header, "n,a=alice,");
    assert_eq!(first.bare, "n=alice,r=abc");
    assert_eq!(parse_client_first(b"n,a=admin,n=alice,r=abc").unwrap_err(), ScramError::AuthzidMismatch);
    // The c= echo must then carry the authzid too: "n,a=alice," and not "n,,".
    let cred = credential(Mechanism::ScramSha256, "pw");
    let server = ScramServer::new(Mechanism::ScramSha256, SECRET);
    let mut client = TestClient::new(Mechanism::ScramSha256, "alice", "pw", "abc");
    client.gs2_header = "n,a=alice,".to_owned();
    let (state, server_first) =
        server.client_first(&client.first(), |_| Some(cred.clone()), &mut counter_rng()).unwrap();
    let (last, _) = client.last(&server_first);
    assert!(last.starts_with("c=bixhPWFsaWNlLA==,"), "{last}");
    assert_eq!(state.client_final(last.as_bytes()).unwrap().0, "alice");
}

#[test]
fn extensions_are_refused() {
    for msg in [&b"n,,m=ext,n=user,r=abc"[..], b"n,,n=user,r=abc,tokenauth=true", b"n,,n=user,r=abc,x=1"] {
        assert_eq!(parse_client_first(msg).unwrap_err(), ScramError::UnsupportedExtension);
    }
}

#[test]
fn escaped_usernames() {
    assert_eq!(unescape_saslname("a=2Cb=3Dc").unwrap(), "a,b=c");
    assert_eq!(escape_saslname("a,b=c"), "a=2Cb=3Dc");
    for bad in ["a=2cb", "a=", "a=41", "=3", "", "a\0b"] {
        assert!(unescape_saslname(bad).is_err(), "{bad:?}");
    }
    let first = parse_client_first(b"n,,n=o=3Du=2Ct,r=abc").unwrap();
    assert_eq!(first.username, "o=u,t");

    let cred = credential(Mechanism::ScramSha256, "pw");
    let (principal, ..) = exchange(Mechanism::ScramSha256, "x,y=z", "pw", Some(&cred), |m| m).unwrap();
    assert_eq!(principal, "x,y=z");
}

#[test]
fn oversize_and_malformed_inputs_are_refused() {
    let big = format!("n,,n=user,r={}", "a".repeat(MAX_MESSAGE_LEN));
    assert!(matches!(parse_client_first(big.as_bytes()), Err(ScramError::MessageTooLarge(_))));
    let long_user = format!("n,,n={},r=abc", "u".repeat(MAX_USERNAME_LEN + 1));
    assert_eq!(parse_client_first(long_user.as_bytes()).unwrap_err(), ScramError::UsernameTooLong);
    let ok_user = format!("n,,n={},r=abc", "u".repeat(MAX_USERNAME_LEN));
    assert!(parse_client_first(ok_user.as_bytes()).is_ok());
    let long_nonce = format!("n,,n=user,r={}", "a".repeat(MAX_NONCE_LEN + 1));
    assert_eq!(parse_client_first(long_nonce.as_bytes()).unwrap_err(), ScramError::NonceTooLong);
    for bad in
        [&b""[..], b"n,,", b"n,,n=user", b"n,,n=user,r=", b"n,,n=user,r=a b", b"n,,r=abc,n=user", b"n,,n=user,r=\xff"]
    {
        assert!(matches!(parse_client_first(bad), Err(ScramError::Malformed(_))), "{bad:?}");
    }

    let server = ScramServer::new(Mechanism::ScramSha256, SECRET);
    let final_msg = |msg: &[u8]| {
        let (state, _) = server.client_first(b"n,,n=user,r=abc", |_| None, &mut counter_rng()).unwrap();
        state.client_final(msg).unwrap_err()
    };
    assert!(matches!(final_msg(&[b'a'; MAX_MESSAGE_LEN + 1]), ScramError::MessageTooLarge(_)));
    assert!(matches!(final_msg(b"c=biws,r=abc"), ScramError::Malformed(_)));
    assert!(matches!(final_msg(b"c=biws,r=abc,p=!!"), ScramError::Malformed(_)));
    assert!(matches!(final_msg(b"c=biws,r=abc,p=AAAA,x=1"), ScramError::Malformed(_)));
    assert_eq!(final_msg(b"c=biws,r=abc,e=1,p=AAAA"), ScramError::UnsupportedExtension);
}

#[test]
fn iteration_bounds() {
    for bad in [0, 4095, 16385, u32::MAX] {
        let err = ScramCredential::new(Mechanism::ScramSha256, "pw", b"salt", bad).unwrap_err();
        assert_eq!(err, ScramError::InvalidIterations(bad));
        assert_eq!(err.error_code(), ResponseError::UnacceptableCredential);
    }
    assert!(ScramCredential::new(Mechanism::ScramSha256, "pw", b"salt", 16384).is_ok());
    assert!(ScramCredential::new(Mechanism::ScramSha256, "pw", b"", 4096).is_err());
    let server = ScramServer::new(Mechanism::ScramSha256, SECRET);
    assert!(server.clone().with_fake_iterations(20000).is_err());
    assert!(server.with_fake_iterations(8192).is_ok());
}

#[test]
fn salted_password_path_matches_password_path() {
    for m in Mechanism::ALL {
        let salt = b"some salt";
        let salted = m.salted_password(b"pw", salt, 4096);
        let a = ScramCredential::new(m, "pw", salt, 4096).unwrap();
        let b = ScramCredential::from_salted_password(m, salt, &salted, 4096).unwrap();
        assert_eq!(a, b);
        assert!(ScramCredential::from_salted_password(m, salt, &salted[1..], 4096).is_err());
    }
}

#[test]
fn mechanism_names() {
    for m in Mechanism::ALL {
        assert_eq!(Mechanism::from_name(m.name()), Some(m));
    }
    assert_eq!(Mechanism::ScramSha256.name(), "SCRAM-SHA-256");
    assert_eq!(Mechanism::ScramSha512.name(), "SCRAM-SHA-512");
    assert_eq!(Mechanism::from_name("scram-sha-256"), None);
    assert_eq!(Mechanism::from_name("PLAIN"), None);
    assert_eq!(ScramError::UnsupportedMechanism.error_code(), ResponseError::UnsupportedSaslMechanism);
}

#[test]
fn credential_serde_round_trip_and_debug_redaction() {
    let cred = credential(Mechanism::ScramSha512, "pw");
    let json = serde_json::to_string(&cred).unwrap();
    assert!(json.contains("\"SCRAM-SHA-512\""), "{json}");
    assert_eq!(serde_json::from_str::<ScramCredential>(&json).unwrap(), cred);

    let debug = format!("{cred:?}");
    for key in [&cred.stored_key, &cred.server_key] {
        assert!(!debug.contains(&format!("{key:?}")), "{debug}");
        assert!(!debug.contains(&STANDARD.encode(key)), "{debug}");
    }
    assert!(debug.contains("<redacted>"), "{debug}");
    let server = ScramServer::new(Mechanism::ScramSha256, SECRET);
    assert!(!format!("{server:?}").contains("7, 7"));
}

#[test]
fn plain_parsing() {
    assert_eq!(parse_plain(b"\0alice\0pw").unwrap(), ("", "alice", "pw"));
    assert_eq!(parse_plain(b"alice\0alice\0p w").unwrap(), ("alice", "alice", "p w"));
    assert_eq!(parse_plain(b"admin\0alice\0pw").unwrap_err(), PlainError::AuthzidMismatch);
    for bad in [&b""[..], b"alice\0pw", b"\0alice\0pw\0extra", b"\0\0pw", b"\0alice\0", b"\0al\xffice\0pw"] {
        assert!(matches!(parse_plain(bad), Err(PlainError::Malformed(_))), "{bad:?}");
    }
    let long = format!("\0{}\0pw", "u".repeat(MAX_USERNAME_LEN + 1));
    assert_eq!(parse_plain(long.as_bytes()).unwrap_err(), PlainError::UsernameTooLong);
    let huge = format!("\0u\0{}", "p".repeat(MAX_MESSAGE_LEN));
    assert!(matches!(parse_plain(huge.as_bytes()), Err(PlainError::MessageTooLarge(_))));
    assert_eq!(PlainError::AuthzidMismatch.error_code(), ResponseError::SaslAuthenticationFailed);
}

#[test]
fn plain_verifies_against_scram_store() {
    for m in Mechanism::ALL {
        let cred = credential(m, "hunter2");
        assert_eq!(verify_plain(&cred, "hunter2"), Ok(()));
        assert_eq!(verify_plain(&cred, "hunter3"), Err(PlainError::InvalidCredentials));
        let mut excessive = cred.clone();
        excessive.iterations = 1_000_000;
        assert_eq!(verify_plain(&excessive, "hunter2"), Err(PlainError::InvalidCredentials));
    }
}

#[test]
fn client_matches_the_rfc7677_vector() {
    let (client, first) =
        ScramClient::start_with_nonce(Mechanism::ScramSha256, "user", "pencil", "rOprNGfwEbeRWgbNEkqO");
    assert_eq!(first, b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
    let server_first = b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    let (last, final_message) = client.server_first(server_first).unwrap();
    assert_eq!(
        final_message,
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
          p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
    );
    last.server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=").unwrap();
}

#[test]
fn client_and_server_agree_and_the_client_checks_the_server() {
    for mechanism in Mechanism::ALL {
        let cred = ScramCredential::generate(mechanism, "s3cret", 4096, &mut OsRandom).unwrap();
        let mut session = ScramSession::new(ScramServer::generate(mechanism, &mut OsRandom).unwrap());
        let (client, first) = ScramClient::start(mechanism, "al,ice", "s3cret", &mut OsRandom).unwrap();
        let server_first = session.client_first(&first, |u| (u == "al,ice").then(|| cred.clone()), &mut OsRandom);
        let (last, client_final) = client.server_first(&server_first.unwrap()).unwrap();
        let (user, server_final) = session.client_final(&client_final).unwrap();
        assert_eq!(user, "al,ice");
        last.server_final(&server_final).unwrap();
    }
    // A server that does not hold the credential cannot produce the signature.
    let (client, _) = ScramClient::start_with_nonce(Mechanism::ScramSha256, "u", "pw", "abc");
    let (last, _) = client.server_first(b"r=abcdef,s=c2FsdA==,i=4096").unwrap();
    assert_eq!(last.server_final(b"v=AAAA").unwrap_err(), ScramError::ServerSignatureMismatch);
    let (client, _) = ScramClient::start_with_nonce(Mechanism::ScramSha256, "u", "pw", "abc");
    let (last, _) = client.server_first(b"r=abcdef,s=c2FsdA==,i=4096").unwrap();
    assert_eq!(last.server_final(b"e=invalid-proof").unwrap_err(), ScramError::InvalidCredentials);
}

#[test]
fn client_refuses_hostile_server_first() {
    let start = || ScramClient::start_with_nonce(Mechanism::ScramSha512, "u", "pw", "abc").0;
    // Unbounded PBKDF2 work, a nonce that is not an extension of ours, garbage.
    assert_eq!(
        start().server_first(b"r=abcdef,s=c2FsdA==,i=100000000").unwrap_err(),
        ScramError::InvalidIterations(100_000_000)
    );
    assert_eq!(start().server_first(b"r=abcdef,s=c2FsdA==,i=10").unwrap_err(), ScramError::InvalidIterations(10));
    assert_eq!(start().server_first(b"r=xyz123,s=c2FsdA==,i=4096").unwrap_err(), ScramError::NonceMismatch);
    assert_eq!(start().server_first(b"r=abc,s=c2FsdA==,i=4096").unwrap_err(), ScramError::NonceMismatch);
    for bad in [&b""[..], b"s=c2FsdA==", b"r=abcd,s=!!,i=4096", b"r=abcd,s=c2FsdA==", b"\xff\xfe"] {
        assert!(matches!(start().server_first(bad), Err(ScramError::Malformed(_))), "{bad:?}");
    }
    assert_eq!(plain_message("u", "p"), b"\0u\0p");
}
