//! The listener's login, driven by millrace's own SCRAM client and raw PLAIN messages.

use super::*;
use kafka_protocol::messages::{ApiVersionsRequest, MetadataRequest};
use kafka_protocol::protocol::Request;
use millrace_protocol::scram::{plain_message, ScramClient};

fn frame<R: Request>(version: i16, request: &R) -> Bytes {
    message::encode_request(version, 7, Some("test"), request).unwrap().slice(4..)
}

fn handshake(mechanism: &str) -> Bytes {
    frame(1, &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_string(mechanism.into())))
}

fn authenticate(bytes: Vec<u8>) -> Bytes {
    frame(2, &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(bytes)))
}

fn handshake_answer(response: &Bytes) -> SaslHandshakeResponse {
    message::decode_response::<SaslHandshakeRequest>(response.slice(4..), 1, 7).unwrap()
}

fn authenticate_answer(response: &Bytes) -> SaslAuthenticateResponse {
    message::decode_response::<SaslAuthenticateRequest>(response.slice(4..), 2, 7).unwrap()
}

/// One user, alice, with password "s3cret" for both SCRAM mechanisms.
fn store() -> impl Fn(&str, Mechanism) -> Option<ScramCredential> {
    let credentials: Vec<ScramCredential> = Mechanism::ALL
        .into_iter()
        .map(|m| ScramCredential::generate(m, "s3cret", 4096, &mut OsRandom).unwrap())
        .collect();
    move |user: &str, mechanism: Mechanism| {
        (user == "alice").then(|| credentials.iter().find(|c| c.mechanism == mechanism).cloned()).flatten()
    }
}

fn authenticator(mechanisms: &[&str]) -> Authenticator {
    let settings = SaslSettings::new(mechanisms.iter().map(|m| m.to_string()).collect()).unwrap();
    Authenticator::new(Arc::new(settings))
}

fn scram_login(mechanism: Mechanism, user: &str, password: &str) -> Step {
    let lookup = store();
    let mut login = authenticator(&["SCRAM-SHA-512", "SCRAM-SHA-256"]);
    let Step::Continue(answer) = login.step(&handshake(mechanism.name()), &lookup).unwrap() else {
        panic!("handshake")
    };
    assert_eq!(handshake_answer(&answer).error_code, 0);
    let (client, first) = ScramClient::start(mechanism, user, password, &mut OsRandom).unwrap();
    let Step::Continue(answer) = login.step(&authenticate(first), &lookup).unwrap() else { panic!("server-first") };
    let server_first = authenticate_answer(&answer);
    assert_eq!(server_first.error_code, 0);
    let (last, client_final) = client.server_first(&server_first.auth_bytes).unwrap();
    let step = login.step(&authenticate(client_final), &lookup).unwrap();
    if let Step::Authenticated(answer, _) = &step {
        // The client checks the server too: only a holder of the credential can sign.
        last.server_final(&authenticate_answer(answer).auth_bytes).unwrap();
    }
    step
}

#[test]
fn scram_logins_name_the_user_and_prove_the_server() {
    for mechanism in Mechanism::ALL {
        match scram_login(mechanism, "alice", "s3cret") {
            Step::Authenticated(_, principal) => assert_eq!(principal.to_string(), "User:alice"),
            other => panic!("{mechanism}: {other:?}"),
        }
    }
}

#[test]
fn wrong_passwords_and_unknown_users_fail_alike() {
    let mut answers = Vec::new();
    for (user, password) in [("alice", "wrong"), ("mallory", "s3cret")] {
        let Step::Failed(answer, reason) = scram_login(Mechanism::ScramSha512, user, password) else {
            panic!("{user} logged in")
        };
        assert!(reason.contains("SCRAM-SHA-512"), "{reason}");
        let answer = authenticate_answer(&answer);
        assert_eq!(answer.error_code, ResponseError::SaslAuthenticationFailed.code());
        answers.push((answer.error_code, answer.error_message));
    }
    assert_eq!(answers[0], answers[1], "the client cannot tell a wrong password from an unknown user");
}

#[test]
fn plain_checks_the_password_against_the_scram_credential() {
    let lookup = store();
    for (password, logged_in) in [("s3cret", true), ("nope", false)] {
        let mut login = authenticator(&["PLAIN"]);
        assert!(matches!(login.step(&handshake("PLAIN"), &lookup).unwrap(), Step::Continue(_)));
        let step = login.step(&authenticate(plain_message("alice", password)), &lookup).unwrap();
        match step {
            Step::Authenticated(_, principal) => assert!(logged_in && principal.to_string() == "User:alice"),
            Step::Failed(answer, _) => {
                assert!(!logged_in);
                assert_eq!(authenticate_answer(&answer).error_code, ResponseError::SaslAuthenticationFailed.code());
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn mechanisms_not_enabled_are_refused_with_the_list() {
    let lookup = store();
    let mut login = authenticator(&["SCRAM-SHA-512"]);
    let Step::Failed(answer, _) = login.step(&handshake("PLAIN"), &lookup).unwrap() else { panic!("PLAIN accepted") };
    let answer = handshake_answer(&answer);
    assert_eq!(answer.error_code, ResponseError::UnsupportedSaslMechanism.code());
    assert_eq!(answer.mechanisms.iter().map(|m| m.as_str()).collect::<Vec<_>>(), ["SCRAM-SHA-512"]);
}

#[test]
fn out_of_order_and_other_requests() {
    let lookup = store();
    let mut login = authenticator(&["SCRAM-SHA-512"]);
    // ApiVersions and everything else are the connection's to route (it allows only ApiVersions).
    assert!(matches!(login.step(&frame(3, &ApiVersionsRequest::default()), &lookup).unwrap(), Step::NotSasl));
    assert!(matches!(login.step(&frame(12, &MetadataRequest::default()), &lookup).unwrap(), Step::NotSasl));
    let Step::Failed(answer, _) = login.step(&authenticate(b"n,,n=alice,r=abc".to_vec()), &lookup).unwrap() else {
        panic!("authenticate before handshake")
    };
    assert_eq!(authenticate_answer(&answer).error_code, ResponseError::IllegalSaslState.code());
    // v0 would switch the connection to raw tokens: refused outright.
    let mut login = authenticator(&["SCRAM-SHA-512"]);
    let v0 = frame(0, &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("SCRAM-SHA-512")));
    assert!(login.step(&v0, &lookup).is_err());
    assert!(login.step(&Bytes::from_static(b"\x00\x11"), &lookup).is_err(), "a truncated frame");
}
