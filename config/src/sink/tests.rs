//! Secrets, `${VAR}`, `*_file` and TLS settings of the sink configuration, through the loader.

#![allow(clippy::unwrap_used)]
use crate::parse_sink;
use crate::sink::{InfluxRecordFormat, Precision};

const ES: &str = "[[elasticsearch]]\nname = \"es\"\ntopics = [\"t\"]\ngroup = \"g\"\n";

fn problems(text: &str) -> Vec<String> {
    parse_sink(text, "s.toml").unwrap_err().iter().map(|p| p.to_string()).collect()
}

#[test]
fn https_with_tls_and_secrets_from_the_environment_and_files() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "influx-t0ken\n").unwrap();
    std::env::set_var("MILLRACE_TEST_SINK_ES_PASSWORD", "es-pa\"ss");
    let text = format!(
        "{ES}endpoints = [\"https://es1:9200\", \"https://es2:9200\"]\nusername = \"elastic\"\n\
         password = \"${{MILLRACE_TEST_SINK_ES_PASSWORD}}\"\ntls = {{ ca_file = {ca:?} }}\n\n\
         [[influxdb]]\nname = \"m\"\ntopics = [\"metrics\"]\ngroup = \"g2\"\nurl = \"https://influx:8086\"\n\
         api = \"v2\"\norg = \"ops\"\nbucket = \"metrics\"\ntoken_file = {token:?}\n\n\
         [influxdb.tls]\ninsecure_skip_verify = true\n"
    );
    let config = parse_sink(&text, "s.toml").unwrap();
    let es = &config.elasticsearch[0];
    assert_eq!(es.password.as_ref().map(|p| p.expose()), Some("es-pa\"ss"));
    assert_eq!(es.tls.ca_file.as_deref(), Some(ca.as_path()));
    let influx = &config.influxdb[0];
    assert_eq!(influx.token.as_ref().map(|t| t.expose()), Some("influx-t0ken"));
    assert!(influx.tls.insecure_skip_verify);

    // Neither secret shows in the configuration's Debug form.
    let debug = format!("{config:?}");
    assert!(!debug.contains("es-pa") && !debug.contains("t0ken"), "{debug}");
    assert!(debug.contains("password: Some(\"***\")"), "{debug}");

    let warnings = config.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].starts_with("influxdb[0].tls.insecure_skip_verify"), "{warnings:?}");
}

#[test]
fn credentials_over_plain_http_are_warned_about_and_in_urls_refused() {
    let text = format!("{ES}endpoints = [\"http://es:9200\"]\napi_key = \"k\"\n");
    let warnings = parse_sink(&text, "s.toml").unwrap().warnings();
    assert!(warnings.len() == 1 && warnings[0].contains("in clear over http://es:9200"), "{warnings:?}");

    let text = format!("{ES}endpoints = [\"https://elastic:hunter2@es:9200\"]\n");
    let found = problems(&text);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("s.toml: key `elasticsearch[0].endpoints`: `https://elastic:***@es:9200`"));
    assert!(found[0].contains("fix: set username and password") && !found[0].contains("hunter2"), "{found:?}");
}

#[test]
fn secret_mistakes_are_named_with_their_key() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let text = format!(
        "{ES}endpoints = [\"https://es:9200\"]\nusername = \"u\"\npassword = \"p\"\npassword_file = {missing:?}\n\
         api_key_file = {missing:?}\n[elasticsearch.tls]\ncert_file = {missing:?}\n"
    );
    let found = problems(&text);
    for key in ["elasticsearch[0].password_file", "elasticsearch[0].api_key_file", "elasticsearch[0].tls.key_file"] {
        assert!(found.iter().any(|p| p.contains(&format!("key `{key}`")) && p.contains("fix:")), "{key}: {found:#?}");
    }
    assert!(found.iter().any(|p| p.contains("both `password` and `password_file`")), "{found:#?}");
    assert!(found.iter().any(|p| p.contains("cannot read") && p.contains(&missing.display().to_string())));

    // An unset variable stops the load with its name and line.
    let text = format!("{ES}endpoints = [\"https://es:9200\"]\napi_key = \"${{MILLRACE_TEST_SURELY_UNSET}}\"\n");
    let found = problems(&text);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("line 6") && found[0].contains("`MILLRACE_TEST_SURELY_UNSET` is not set"), "{found:?}");
}

#[test]
fn source_takes_kafka_client_security_with_the_password_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("sink.password");
    std::fs::write(&password, "s1nk-pa55\n").unwrap();
    let source = format!(
        "[source]\nbootstrap = \"b:9093\"\nsecurity_protocol = \"SASL_SSL\"\nsasl_username = \"sink\"\n\
         sasl_password_file = {password:?}\nstart_at = \"latest\"\n"
    );
    let config = parse_sink(&format!("{source}{ES}endpoints = [\"https://es:9200\"]\n"), "s.toml").unwrap();
    let security = &config.source.security;
    assert_eq!(security.sasl_password.as_ref().map(|p| p.expose()), Some("s1nk-pa55"));
    assert!(security.rdkafka_properties().contains(&("sasl.mechanism", "SCRAM-SHA-512".into())));
    assert!(!format!("{config:?}").contains("s1nk-pa55"));

    // The passthrough table cannot say something else about the same property.
    let text = format!(
        "{source}[source.librdkafka]\n\"security.protocol\" = \"plaintext\"\n{ES}endpoints = [\"https://es:9200\"]\n"
    );
    let found = problems(&text);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("s.toml: key `source.librdkafka.\"security.protocol\"`"), "{found:?}");
    assert!(found[0].contains("fix: remove it and set security_protocol"), "{found:?}");
}

#[test]
fn foreign_record_formats_take_telegraf_timestamp_units_unless_told() {
    let sink = |extra: &str| {
        format!(
            "[source]\nbootstrap = \"127.0.0.1:9092\"\n\n[[influxdb]]\nname = \"m\"\ntopics = [\"m\"]\ngroup = \"g\"\n\
             url = \"http://127.0.0.1:8086\"\ndatabase = \"metrics\"\n{extra}\n"
        )
    };
    let parsed = |extra: &str| crate::parse_sink(&sink(extra), "sink.toml").unwrap().influxdb.remove(0);
    assert_eq!(parsed("format = \"influx\"").input_precision(), Precision::Ns);
    assert_eq!(parsed("format = \"json\"").input_precision(), Precision::S);
    assert_eq!(parsed("format = \"json\"\ninput_precision = \"ms\"").input_precision(), Precision::Ms);
    assert_eq!(parsed("").format, InfluxRecordFormat::Millrace);
    let wrong = problems(&sink("input_precision = \"ms\""));
    assert!(wrong.iter().any(|p| p.contains("influxdb[0].input_precision")), "{wrong:?}");
    assert!(problems(&sink("format = \"telegraf\"")).iter().any(|p| p.contains("format")), "an unknown format");
}
