//! The file input over real files in a temporary directory: symbolic links are skipped unless
//! asked for, and lines too long for the producer are cut, flagged and acknowledged like any.

#![allow(clippy::unwrap_used)]
use super::*;
use crate::channel;
use crate::pipeline::Envelope;
use serde_json::Value;
use std::os::unix::fs::symlink;

/// Runs one `--once` pass of a file input reading `pattern`; returns its envelopes.
fn read_once(pattern: &str, extra: &str, record_limit: usize) -> Vec<Envelope> {
    let text = format!("[[inputs.file]]\nname = \"f\"\ntopic = \"logs\"\ninclude = [{pattern:?}]\n{extra}\n");
    let config = millrace_config::parse_agent(&text, "test.toml").unwrap();
    let input = config.inputs.file[0].clone();
    let tailer = FileTailer::new(input, "h".into(), BTreeMap::new(), Arc::default(), record_limit).unwrap();
    let (tx, mut rx) = channel::channel(64 << 20);
    tailer.run_once(&tx);
    drop(tx);
    std::iter::from_fn(|| rx.blocking_recv()).flatten().collect()
}

fn doc(envelope: &Envelope) -> Value {
    serde_json::from_slice(&envelope.payload).unwrap()
}

fn messages(envelopes: &[Envelope]) -> Vec<String> {
    let mut all: Vec<String> = envelopes.iter().map(|e| doc(e)["message"].as_str().unwrap().to_string()).collect();
    all.sort();
    all
}

#[test]
fn links_in_watched_directories_are_skipped_unless_followed() {
    let dir = tempfile::tempdir().unwrap();
    let (watched, secret) = (dir.path().join("logs"), dir.path().join("secret"));
    std::fs::create_dir_all(watched.join("app")).unwrap();
    std::fs::create_dir_all(&secret).unwrap();
    std::fs::write(secret.join("shadow"), "root:secret-hash\n").unwrap();
    std::fs::write(secret.join("x.log"), "through a linked directory\n").unwrap();
    std::fs::write(watched.join("real.log"), "a real line\n").unwrap();
    std::fs::write(watched.join("app").join("nested.log"), "a nested line\n").unwrap();
    symlink(secret.join("shadow"), watched.join("shadow.log")).unwrap();
    symlink(&secret, watched.join("linked")).unwrap();
    // A watched directory that is itself a link, named in the pattern: chosen by the operator.
    symlink(&watched, dir.path().join("current")).unwrap();

    for base in [&watched, &dir.path().join("current")] {
        let got = read_once(&format!("{}/*.log", base.display()), "", 1 << 20);
        assert_eq!(messages(&got), ["a real line"], "{}", base.display());
        let got = read_once(&format!("{}/*/*.log", base.display()), "", 1 << 20);
        assert_eq!(messages(&got), ["a nested line"], "{}", base.display());
    }
    // Named exactly, a link is still a link.
    assert!(read_once(&watched.join("shadow.log").display().to_string(), "", 1 << 20).is_empty());

    let followed = "follow_symlinks = true";
    let got = read_once(&format!("{}/*.log", watched.display()), followed, 1 << 20);
    assert_eq!(messages(&got), ["a real line", "root:secret-hash"]);
    let got = read_once(&format!("{}/*/*.log", watched.display()), followed, 1 << 20);
    assert_eq!(messages(&got), ["a nested line", "through a linked directory"]);
}

#[test]
fn lines_too_long_for_the_producer_are_cut_flagged_and_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.log");
    let quotes = "\"".repeat(3_000); // 3,000 bytes that JSON doubles
    let long = "é".repeat(4_000); // 8,000 bytes of two-byte characters
    let text = format!("first\n{long}\n{quotes}\nlast\n");
    std::fs::write(&path, &text).unwrap();
    let limit = 2_000;
    for extra in ["", "json = true", "[inputs.file.processors]\nadd_fields = { \"labels.env\" = \"prod\" }"] {
        let got = read_once(&path.display().to_string(), extra, limit);
        assert_eq!(got.len(), 4, "{extra}: every line is shipped");
        for envelope in &got {
            let key = envelope.key.as_ref().map_or(0, |k| k.len());
            assert!(envelope.payload.len() + key <= limit, "{extra}: {} bytes", envelope.payload.len() + key);
        }
        let docs: Vec<Value> = got.iter().map(doc).collect();
        assert_eq!(docs[0]["message"], "first");
        assert_eq!(docs[3]["message"], "last");
        for cut in &docs[1..3] {
            assert!(cut["log"]["flags"].as_array().unwrap().contains(&Value::from("truncated")), "{extra}: {cut}");
            assert!(!cut["message"].as_str().unwrap().is_empty(), "{extra}: something of the line is kept");
        }
        assert!(long.starts_with(docs[1]["message"].as_str().unwrap()), "cut between characters");
        // Each record's acknowledgement covers its whole line: the checkpoint reaches the end.
        let ends: Vec<u64> = got.iter().map(|e| e.ack.as_ref().unwrap().end_offset).collect();
        let first = "first\n".len() as u64;
        let second = first + long.len() as u64 + 1;
        assert_eq!(ends, [first, second, second + quotes.len() as u64 + 1, text.len() as u64], "{extra}");
    }
}

#[test]
fn pattern_prefixes_and_character_boundaries() {
    assert_eq!(fixed_components("/var/log/*.log"), 3);
    assert_eq!(fixed_components("/var/log/app.log"), 4);
    assert_eq!(fixed_components("/var/*/x/*.log"), 2);
    assert_eq!(fixed_components("logs/[ab].log"), 1);
    let text = "aé🦀".as_bytes(); // 1 + 2 + 4 bytes
    let boundaries: Vec<usize> = (0..=8).map(|at| char_boundary_at_or_before(text, at)).collect();
    assert_eq!(boundaries, [0, 1, 1, 3, 3, 3, 3, 7, 7]);
    assert_eq!(char_boundary_at_or_before(&[0x80, 0x80, 0x80, 0x80, 0x80], 5), 5);
    assert_eq!(char_boundary_at_or_before(&[0x80, 0x80, 0x80, 0x80, 0x80], 4), 1);
}
