//! The agent's `[output]` with Kafka client security keys, through the loader: values,
//! `${VAR}` and `*_file` secrets, typos, missing credentials and the passthrough table.

#![allow(clippy::unwrap_used)]
use crate::kafka_client::SecurityProtocol;
use crate::parse_agent;

const INPUT: &str = "[[inputs.stdin]]\nname = \"in\"\ntopic = \"logs\"\n";

fn problems(output: &str) -> Vec<String> {
    let text = format!("[output]\nbootstrap = \"b:9093\"\n{output}\n{INPUT}");
    parse_agent(&text, "a.toml").unwrap_err().iter().map(ToString::to_string).collect()
}

#[test]
fn security_keys_sit_in_output_and_reach_librdkafka_with_the_password_hidden() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, "-----BEGIN CERTIFICATE-----\n").unwrap();
    std::env::set_var("MILLRACE_TEST_AGENT_SASL_PASSWORD", "ag3nt-pa55");
    let text = format!(
        "[output]\nbootstrap = \"b:9093\"\nsecurity_protocol = \"SASL_SSL\"\nsasl_mechanism = \"SCRAM-SHA-512\"\n\
         sasl_username = \"agent\"\nsasl_password = \"${{MILLRACE_TEST_AGENT_SASL_PASSWORD}}\"\n\
         ssl_ca_location = {ca:?}\nlinger = \"10ms\"\n[output.librdkafka]\n\"ssl.cipher.suites\" = \"HIGH\"\n{INPUT}"
    );
    let config = parse_agent(&text, "a.toml").unwrap();
    let output = &config.output;
    assert_eq!(output.security.security_protocol, SecurityProtocol::SaslSsl);
    assert_eq!(output.linger.0, 10, "the keys beside the flattened ones still parse");
    let properties = output.security.rdkafka_properties();
    for expected in [
        ("security.protocol", "sasl_ssl".to_string()),
        ("sasl.username", "agent".into()),
        ("sasl.password", "ag3nt-pa55".into()),
        ("ssl.ca.location", ca.display().to_string()),
    ] {
        assert!(properties.contains(&expected), "{expected:?} in {properties:?}");
    }
    let debug = format!("{config:?}");
    assert!(!debug.contains("ag3nt-pa55") && debug.contains("sasl_password: Some(\"***\")"), "{debug}");
    assert!(config.warnings().is_empty(), "{:?}", config.warnings());
}

#[test]
fn mistakes_in_output_security_name_the_key_and_the_fix() {
    // A typo is refused, not ignored: the flattened keys keep `[output]` closed to unknown keys.
    let found = problems("security_protocol = \"SASL_SSL\"\nsasl_usernme = \"agent\"\nsasl_password = \"p\"");
    assert!(found.len() == 1 && found[0].contains("sasl_usernme"), "{found:?}");

    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let found = problems(&format!(
        "security_protocol = \"SASL_SSL\"\nsasl_password_file = {missing:?}\n\
         [output.librdkafka]\n\"sasl.password\" = \"p\"\n\"ssl.cipher.suites\" = \"HIGH\""
    ));
    for (key, fix) in [
        ("output.sasl_password_file", "fix: write the secret into the file"),
        ("output.sasl_username", "fix: set the user's name"),
        ("output.librdkafka.\"sasl.password\"", "fix: remove it and set sasl_password"),
    ] {
        assert!(
            found.iter().any(|p| p.starts_with(&format!("a.toml: key `{key}`")) && p.contains(fix)),
            "{key}: {found:#?}"
        );
    }
    assert_eq!(found.len(), 3, "{found:#?}");
}

#[test]
fn risky_settings_are_warned_about() {
    let text = format!(
        "[output]\nsecurity_protocol = \"SASL_PLAINTEXT\"\nsasl_mechanism = \"PLAIN\"\nsasl_username = \"a\"\n\
         sasl_password = \"p\"\n{INPUT}"
    );
    let warnings = parse_agent(&text, "a.toml").unwrap().warnings();
    assert!(warnings.len() == 1 && warnings[0].contains("sends the password in clear"), "{warnings:?}");
    let text = format!(
        "[output]\nsecurity_protocol = \"SSL\"\nssl_endpoint_identification_algorithm = \"none\"\n\
         [output.librdkafka]\n\"enable.ssl.certificate.verification\" = \"false\"\n{INPUT}"
    );
    let warnings = parse_agent(&text, "a.toml").unwrap().warnings();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[1].contains("broker certificates are NOT checked"), "{warnings:?}");
}

#[test]
fn syslog_over_tls_needs_tcp_and_a_ca_to_check_senders() {
    let syslog = |protocol: &str, tls: &str| {
        format!(
            "[output]\nbootstrap = \"b:9093\"\n[[inputs.syslog]]\nname = \"s\"\ntopic = \"syslog\"\n\
             listen = \"127.0.0.1:6514\"\nprotocol = \"{protocol}\"\n[inputs.syslog.tls]\n\
             certificate_file = \"agent.pem\"\nkey_file = \"agent.key\"\n{tls}"
        )
    };
    let config = parse_agent(&syslog("tcp", "ca_file = \"ca.pem\"\nclient_auth = \"required\""), "a.toml").unwrap();
    let tls = config.inputs.syslog[0].tls.as_ref().unwrap();
    assert_eq!(tls.client_auth, crate::ClientAuth::Required);
    for (protocol, tls, key) in
        [("udp", "", "inputs.syslog[0].tls"), ("tcp", "client_auth = \"required\"", "inputs.syslog[0].tls.ca_file")]
    {
        let found: Vec<String> =
            parse_agent(&syslog(protocol, tls), "a.toml").unwrap_err().iter().map(ToString::to_string).collect();
        assert!(found.len() == 1 && found[0].starts_with(&format!("a.toml: key `{key}`")), "{found:?}");
    }
}

fn file_input_problems(extra: &str) -> Vec<String> {
    let text = format!("[[inputs.file]]\nname = \"f\"\ninclude = [\"/var/log/*.log\"]\n{extra}\n");
    match parse_agent(&text, "a.toml") {
        Ok(_) => Vec::new(),
        Err(problems) => problems.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn routing_templates_modules_and_transforms_are_checked_at_load() {
    let ok = file_input_problems(
        "topic = \"logs-%{[event.dataset]:other}\"\nkey = \"%{[source.ip]}\"\nmodule = \"nginx\"\ntimezone = \"Europe/Berlin\"\n\
         [[inputs.file.transforms]]\ngrok = { patterns = [\"%{INT:n:int}\"] }\nwhen.equals = { \"event.dataset\" = \"nginx.error\" }",
    );
    assert!(ok.is_empty(), "{ok:?}");
    for (extra, says) in [
        ("topic = \"logs-%{[event.dataset]}\"", "has no default"),
        ("topic = \"logs/%{[event.dataset]:x}\"", "characters a topic name cannot have"),
        ("topic = \"logs-%{event.dataset}\"", "must name a field"),
        ("topic = \"a b\"", "not a legal topic name"),
        ("topic = \"t\"\nkey = \"filename\"", "is not a key"),
        ("topic = \"t\"\nmodule = \"nginx\"\ntimezone = \"Mars/Base\"", "is not a time zone"),
        ("topic = \"t\"\ntimezone = \"UTC\"", "applies to a module's times only"),
        ("topic = \"t\"\nmodule = \"iis\"", "unknown variant `iis`"),
        (
            "topic = \"t\"\n[[inputs.file.transforms]]\ngrok = { patterns = [\"x\"] }\njson = {}",
            "sets 2 steps (grok, json)",
        ),
        ("topic = \"t\"\n[[inputs.file.transforms]]\ngrk = {}", "unknown field `grk`"),
        ("topic = \"t\"\n[[inputs.file.transforms]]\ntimestamp = { field = \"t\", formats = [] }", "formats"),
        (
            "topic = \"t\"\n[[inputs.file.transforms]]\ndrop_event = {}\nwhen.regexp = { message = \"(\" }",
            "not a valid regular expression",
        ),
    ] {
        let problems = file_input_problems(extra);
        assert!(problems.iter().any(|p| p.contains(says)), "{extra}: {problems:?}");
    }
}
