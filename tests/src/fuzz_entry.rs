//! The fuzz targets' entry points, one per target, shared by the cargo-fuzz crate (`fuzz/`,
//! nightly) and the corpus replay test (`tests/fuzz_corpus.rs`, stable), so every committed seed
//! and crash reproducer keeps running in `cargo test`.
//!
//! Each entry takes arbitrary bytes and must neither panic nor allocate without bound; the
//! assertions here are properties of the code under test, so a failed one is a finding.

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, ProduceRequest, RequestKind};
use kafka_protocol::records::Compression;
use millrace_broker::log::batch::{split_batches, BatchHeader, HEADER_SIZE};
use millrace_broker::log::compression::{decode_batch, decompress};
use millrace_broker::log::validator::{validate_records, ValidationConfig};
use millrace_protocol::message;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A fuzz target's entry: any bytes in, no panic out.
pub type Entry = fn(&[u8]);

/// The targets, by the name of their corpus directory.
pub const TARGETS: &[(&str, Entry)] = &[
    ("kafka_request", kafka_request),
    ("record_batch", record_batch),
    ("syslog", syslog),
    ("prometheus", prometheus),
    ("sink_records", sink_records),
    ("config", config),
    ("agent_lines", agent_lines),
    ("fetched_records", fetched_records),
];

/// Decompression cap for the fuzzers: small, so a bomb is refused quickly.
const CAP: usize = 1 << 20;

/// A fixed "now" so that runs are reproducible (2023-11-14T22:13:20Z).
const NOW_MS: i64 = 1_700_000_000_000;

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(NOW_MS as u64)
}

/// A request frame as the broker's connection hands it to `api::dispatch` (without the length
/// prefix): the first byte picks the API key among every key the codec knows and the second the
/// version among the versions it decodes; both are written over the frame's own key and version
/// so the header decoder reads them back. The header and then the body are decoded by
/// `millrace_protocol::message`, as the broker does; a Produce request's record batches go on
/// through [`produced_records`], as the broker's produce handler does.
pub fn kafka_request(data: &[u8]) {
    let [key_pick, version_pick, rest @ ..] = data else { return };
    let keys: Vec<ApiKey> = ApiKey::iter().collect();
    let api_key = keys[usize::from(*key_pick) % keys.len()];
    let range = api_key.valid_versions();
    let span = (range.max - range.min + 1) as u16;
    let version = range.min + (u16::from(*version_pick) % span) as i16;
    let mut frame = Vec::with_capacity(rest.len() + 4);
    frame.extend_from_slice(&(api_key as i16).to_be_bytes());
    frame.extend_from_slice(&version.to_be_bytes());
    frame.extend_from_slice(rest);
    let mut body = Bytes::from(frame);
    let Ok(header) = message::decode_request_header(&mut body, api_key, version) else { return };
    assert_eq!(header.request_api_key, api_key as i16);
    assert_eq!(header.request_api_version, version);
    if api_key == ApiKey::Produce {
        // The broker decodes the concrete type; so does this, then walks the records.
        if let Ok(request) = message::decode_request::<ProduceRequest>(&mut body, api_key, version) {
            for topic in &request.topic_data {
                for partition in &topic.partition_data {
                    if let Some(records) = &partition.records {
                        produced_records(records, false);
                    }
                }
            }
        }
    } else {
        let _ = RequestKind::decode(api_key, &mut body, version);
    }
}

/// Record batches as a produce request carries them. Bit 0 of the first byte recomputes the
/// CRC-32C of each batch (so the fuzzer gets past the checksum into the records), bit 1 makes the
/// topic compacted (keys required); the rest is the records field. Each byte run that is not a
/// batch also goes straight to every decompressor.
pub fn record_batch(data: &[u8]) {
    let [flags, rest @ ..] = data else { return };
    let mut records = rest.to_vec();
    if flags & 1 == 1 {
        fix_crcs(&mut records);
    }
    produced_records(&records, flags & 2 == 2);
    if flags & 4 == 4 {
        for compression in [Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd] {
            let _ = decompress(compression, rest, CAP);
        }
    }
}

/// What the produce path does with a partition's records: split into whole, CRC-valid batches,
/// then validate every record of each. A batch the validator accepts must also decode with the
/// record decoder the cleaner, ListOffsets and consumers rely on, to the same number of records.
fn produced_records(records: &[u8], compacted: bool) {
    let Ok(ranges) = split_batches(records) else { return };
    let config = ValidationConfig {
        compacted,
        max_decompressed_bytes: CAP,
        now_ms: NOW_MS,
        timestamp_before_max_ms: Some(3_600_000),
        timestamp_after_max_ms: Some(3_600_000),
    };
    for range in ranges {
        let batch = &records[range];
        let Ok(header) = BatchHeader::parse(batch) else { panic!("split_batches passed a batch whose header fails") };
        if validate_records(batch, &header, &config).is_ok() {
            let mut bytes = Bytes::copy_from_slice(batch);
            match decode_batch(&mut bytes, CAP) {
                Ok(set) => assert_eq!(
                    set.records.len(),
                    header.records_count as usize,
                    "validated batch decodes to a different number of records"
                ),
                Err(e) => panic!("validated batch does not decode: {e:#}"),
            }
        }
    }
}

/// A partition's `records` as a Fetch response carries them, read by the consumers' zero-copy
/// reader (`millrace_protocol::records`). Bit 0 of the first byte recomputes each batch's CRC-32C
/// (so the fuzzer gets past the checksum into the records); the rest is the record set. Every
/// batch's records are read with a 1 MiB decompression cap, headers included. A batch read whole
/// (creation time) must read the same with kafka-protocol's decoder, or be one it refuses for a
/// header key that is not UTF-8 (which it requires and the zero-copy reader does not).
pub fn fetched_records(data: &[u8]) {
    use kafka_protocol::indexmap::IndexMap;
    use millrace_protocol::records::batches;
    type Owned = (i64, i64, Option<Vec<u8>>, Option<Vec<u8>>, Vec<(Vec<u8>, Option<Vec<u8>>)>);
    let [flags, rest @ ..] = data else { return };
    let mut set = rest.to_vec();
    if flags & 1 == 1 {
        fix_crcs(&mut set);
    }
    let mut scratch = Vec::new();
    let mut batches = batches(&set);
    // The bytes not yet framed: batches are whole and back to back from the start.
    let mut unread = &set[..];
    for batch in batches.by_ref() {
        let Ok(batch) = batch else { break };
        let (bytes, after) = split_batch(unread).expect("a batch is framed by its length field");
        unread = after;
        assert!(batch.base_offset() <= batch.last_offset() && batch.last_offset() < batch.next_offset());
        let _ = (batch.compression(), batch.is_control(), batch.is_transactional(), batch.producer_id());
        let Ok(records) = batch.records(&mut scratch, CAP) else { continue };
        let mut ours: Vec<Owned> = Vec::new();
        let mut failed = false;
        for record in records {
            let Ok(record) = record else {
                failed = true;
                continue;
            };
            let headers = record.headers.clone();
            let announced = headers.len();
            let headers: Vec<_> = headers.map(|(k, v)| (k.to_vec(), v.map(<[u8]>::to_vec))).collect();
            assert_eq!(headers.len(), announced, "headers yield a different number than they announce");
            let (key, value) = (record.key.map(<[u8]>::to_vec), record.value.map(<[u8]>::to_vec));
            ours.push((record.offset, record.timestamp_ms, key, value, headers));
        }
        let count = usize::try_from(batch.records_count()).unwrap_or(usize::MAX);
        assert!(ours.len() <= count, "more records than the batch announces");
        if failed || batch.log_append_time() {
            continue;
        }
        assert_eq!(ours.len(), count, "a batch read without error yields fewer records than it announces");
        match decode_batch(&mut Bytes::copy_from_slice(bytes), CAP) {
            Ok(theirs) => {
                // kafka-protocol keeps headers in an IndexMap: duplicates collapse, last one wins.
                for (mine, theirs) in ours.into_iter().zip(&theirs.records) {
                    let headers: IndexMap<_, _> = mine.4.into_iter().collect();
                    let their_headers: Vec<_> = theirs
                        .headers
                        .iter()
                        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_ref().map(|v| v.to_vec())))
                        .collect();
                    assert_eq!(
                        (mine.0, mine.1, mine.2, mine.3, headers.into_iter().collect::<Vec<_>>()),
                        (
                            theirs.offset,
                            theirs.timestamp,
                            theirs.key.as_ref().map(|k| k.to_vec()),
                            theirs.value.as_ref().map(|v| v.to_vec()),
                            their_headers
                        ),
                        "the zero-copy reader and kafka-protocol read different records"
                    );
                }
            }
            Err(e) => assert!(
                ours.iter().any(|r| r.4.iter().any(|(k, _)| std::str::from_utf8(k).is_err())),
                "a batch the zero-copy reader reads whole, kafka-protocol refuses: {e:#}"
            ),
        }
    }
    assert!(batches.next().is_none(), "an item after the end or an error");
}

/// The whole batch at the start of `rest`, by its length field, and what follows it.
fn split_batch(rest: &[u8]) -> Option<(&[u8], &[u8])> {
    let length = i32::from_be_bytes(rest.get(8..12)?.try_into().ok()?);
    rest.split_at_checked(usize::try_from(length).ok()?.checked_add(12)?)
}

/// Rewrites the CRC of each batch whose length field fits in `records`.
fn fix_crcs(records: &mut [u8]) {
    const CRC_AT: usize = 17;
    const ATTRIBUTES_AT: usize = 21;
    let mut position = 0;
    while let Some(rest) = records.get_mut(position..) {
        if rest.len() < HEADER_SIZE {
            return;
        }
        let length = i32::from_be_bytes([rest[8], rest[9], rest[10], rest[11]]);
        let Some(total) = usize::try_from(length).ok().and_then(|l| l.checked_add(12)) else { return };
        let Some(batch) = rest.get_mut(..total) else { return };
        if total < HEADER_SIZE {
            return;
        }
        let crc = crc32c::crc32c(&batch[ATTRIBUTES_AT..]);
        batch[CRC_AT..ATTRIBUTES_AT].copy_from_slice(&crc.to_be_bytes());
        position += total;
    }
}

/// Syslog over TCP: the bytes are pushed through the RFC 6587 framer in pieces (the first byte
/// picks the piece size and the time zone hint), and every frame is parsed.
pub fn syslog(data: &[u8]) {
    use millrace_agent::inputs::syslog::{parse, Framer, TimeZoneHint};
    let [pick, rest @ ..] = data else { return };
    let zone = match pick % 3 {
        0 => TimeZoneHint::Utc,
        1 => TimeZoneHint::Local,
        _ => match chrono::FixedOffset::east_opt(i32::from(*pick) * 900 - 57_600) {
            Some(offset) => TimeZoneHint::Fixed(offset),
            None => TimeZoneHint::Utc,
        },
    };
    // A datagram is parsed as it comes.
    let _ = parse(rest, now(), None, zone);
    let mut framer = Framer::new(4096);
    let piece = usize::from(pick / 3 % 16) + 1;
    for chunk in rest.chunks(piece) {
        framer.push(chunk);
        while let Some(frame) = framer.next_frame() {
            assert!(frame.len() <= 4096, "frame of {} bytes beyond the framer's cap", frame.len());
            let _ = parse(&frame, now(), None, zone);
        }
    }
    framer.finish();
    while let Some(frame) = framer.next_frame() {
        let _ = parse(&frame, now(), None, zone);
    }
}

/// A log line written by whoever reaches the web server (request paths, user agents, referrers
/// are the client's): the first byte picks the parsing — the nginx, apache or syslog module, or
/// a chain of transforms (dissect, key-value, JSON decoding that may overwrite the event's own
/// fields, event time in several formats, conversions, user agent, grok) — and the line runs
/// through it as the file input runs it, then through the routing. The event must stay a JSON
/// object and its topic a legal topic name.
pub fn agent_lines(data: &[u8]) {
    use millrace_agent::pipeline::Processors;
    use millrace_agent::route::{render_key, TopicRoute};
    use millrace_config::agent::transforms::{Module, Transform};
    use std::sync::OnceLock;
    static CHAINS: OnceLock<Vec<Processors>> = OnceLock::new();
    static ROUTE: OnceLock<Option<(TopicRoute, millrace_config::template::Template)>> = OnceLock::new();
    let chains = CHAINS.get_or_init(|| {
        #[derive(serde::Deserialize)]
        struct Steps {
            transforms: Vec<Transform>,
        }
        let steps = r#"
            [[transforms]]
            dissect = { tokenizer = "%{a} %{+a} [%{ts}] %{rest}", target_prefix = "" }
            on_failure = "ignore"
            [[transforms]]
            kv = { field = "rest", target = "kv" }
            [[transforms]]
            json = { overwrite_keys = true }
            [[transforms]]
            timestamp = { field = "ts", formats = ["SYSLOG", "UNIX", "UNIX_MS", "HTTPDATE", "ISO8601", "%Y/%m/%d %H:%M:%S"], timezone = "America/New_York" }
            [[transforms]]
            timestamp = { field = "@timestamp", formats = ["ISO8601", "UNIX"] }
            [[transforms]]
            convert = { fields = { "kv.status" = "integer", "kv.ms" = "float", "kv.ok" = "boolean", "kv.ip" = "ip" } }
            [[transforms]]
            user_agent = { field = "message" }
            [[transforms]]
            grok = { patterns = ["%{COMBINEDAPACHELOG}", "%{SYSLOGLINE}", "%{HTTPD_ERRORLOG}"] }
            when.not.has_fields = ["kv"]
        "#;
        let steps: Vec<Transform> = toml::from_str::<Steps>(steps).map(|s| s.transforms).unwrap_or_default();
        let none = millrace_config::agent::Processors::default();
        let module = |m: Module| Processors::with_transforms(&none, Some((m, true, Some("Europe/Berlin"))), &[]);
        [module(Module::Nginx), module(Module::Apache), module(Module::Syslog), Processors::with_transforms(&none, None, &steps)]
            .into_iter()
            .filter_map(Result::ok)
            .collect()
    });
    let route = ROUTE.get_or_init(|| {
        let topic = TopicRoute::new("logs-%{[event.dataset]:other}-%{[kv.tenant]:none}").ok()?;
        Some((topic, millrace_config::template::Template::parse("%{[source.ip]}/%{[kv.user]}").ok()?))
    });
    assert_eq!(chains.len(), 4, "a chain of the fuzz target does not compile");
    let [pick, rest @ ..] = data else { return };
    let line = String::from_utf8_lossy(rest);
    let mut doc = serde_json::Map::new();
    doc.insert("@timestamp".into(), serde_json::Value::from("2023-11-14T22:13:20.000Z"));
    doc.insert("message".into(), serde_json::Value::from(line.as_ref()));
    let chain = &chains[usize::from(*pick) % chains.len()];
    if !chain.apply(&mut doc) {
        return;
    }
    // What the sinks will do with the record: read it back as one JSON object.
    let encoded = serde_json::to_vec(&doc).unwrap_or_default();
    match serde_json::from_slice(&encoded) {
        Ok(serde_json::Value::Object(_)) => {}
        other => panic!("the event does not read back as a JSON object: {other:?}"),
    }
    if let Some((topic, key)) = route {
        let name = topic.topic(&doc);
        assert!(millrace_config::template::legal_topic(&name), "an illegal topic {name:?}");
        let _ = render_key(key, &doc);
    }
}

/// A Prometheus text exposition body (the scraper reads it as UTF-8, lossily).
pub fn prometheus(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = millrace_agent::inputs::prometheus::parse_text(&text, now());
}

/// The bulk encoder's in-place reading of a document's fields agrees with serde_json's parse:
/// every document serde_json reads as an object is read in place too, with the same fields.
/// (The reverse need not hold: in place, skipped values have no depth limit and their numbers
/// no range check, as with serde's own skipping.)
fn same_fields_as_serde(json: &[u8]) {
    use millrace_sinks::elasticsearch::doc::{Fields, Leaf, Wanted};
    const PATHS: [&[&str]; 8] = [
        &["@timestamp"],
        &["host", "name"],
        &["log", "file", "inode"],
        &["log", "file", "fingerprint"],
        &["log", "offset"],
        &["event", "dataset"],
        &["event"],
        &["a"],
    ];
    let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(json) else { return };
    let value = serde_json::Value::Object(map);
    let wanted = Wanted::new(PATHS.iter().map(|p| p.to_vec()));
    let found = wanted.find(json).expect("an object serde_json reads is read in place too");
    for path in PATHS {
        let (ours, theirs) = (found.leaf(path.iter().copied()), value.leaf(path.iter().copied()));
        let same = match (&ours, &theirs) {
            // serde_json's default float parsing is not always correctly rounded.
            (Some(Leaf::Number(a)), Some(Leaf::Number(b))) if a.is_f64() && b.is_f64() => {
                let (a, b) = (a.as_f64().unwrap_or(f64::NAN), b.as_f64().unwrap_or(f64::NAN));
                a == b || (a - b).abs() <= a.abs().max(b.abs()) * 1e-15
            }
            _ => ours == theirs,
        };
        assert!(same, "{path:?}: in place {ours:?}, serde_json {theirs:?}");
    }
}

/// A record a sink consumed: the InfluxDB encoder (its JSON scanner and line-protocol writer) at
/// the precision the first byte picks, and the Elasticsearch bulk encoder. What they write must
/// keep its framing: one line for InfluxDB, an action line and a source line for a bulk request.
pub fn sink_records(data: &[u8]) {
    use millrace_config::sink::{BulkAction, Precision};
    use millrace_sinks::elasticsearch::bulk;
    use millrace_sinks::elasticsearch::index::IndexName;
    use millrace_sinks::influxdb::line_protocol::{encode_generally, encode_record};
    use millrace_sinks::record::SourceRecord;
    let [pick, json @ ..] = data else { return };
    let precision = match pick % 4 {
        0 => Precision::Ns,
        1 => Precision::Us,
        2 => Precision::Ms,
        _ => Precision::S,
    };
    let mut line = Vec::new();
    let encoded = encode_record(json, precision, &mut line);
    if encoded.is_ok() {
        assert!(!line.contains(&b'\n'), "a point spans lines: {:?}", String::from_utf8_lossy(&line));
    }
    // The one-pass reader of the agent's own records and the general reader agree on every
    // record: the same line, or the same refusal.
    let mut general = Vec::new();
    let generally = encode_generally(json, precision, &mut general);
    assert_eq!(encoded, generally, "the two readers disagree on whether the record is a point");
    if encoded.is_ok() {
        assert_eq!(
            String::from_utf8_lossy(&line),
            String::from_utf8_lossy(&general),
            "the two readers write different lines"
        );
    }
    let action = if pick & 4 == 4 { BulkAction::Create } else { BulkAction::Index };
    let record = SourceRecord {
        topic: "logs",
        partition: 0,
        offset: 42,
        key: None,
        payload: json,
        timestamp_ms: (pick & 8 == 8).then_some(NOW_MS),
        replayed_from: None,
    };
    let mut bulk_body = Vec::new();
    // Daily indices, or names from the document's own fields (cleaned of what an index name may
    // not hold).
    let index =
        IndexName::parse(if pick & 16 == 16 { "logs-%{[event.dataset]:generic}-%Y.%m.%d" } else { "logs-%Y.%m.%d" })
            .expect("a valid index template");
    if bulk::encode(&record, &index, action, &mut bulk_body).is_ok() {
        let lines: Vec<&[u8]> = bulk_body.split(|&b| b == b'\n').collect();
        assert_eq!(lines.len(), 3, "a bulk entry is two lines");
        for line in &lines[..2] {
            assert!(serde_json::from_slice::<serde_json::Value>(line).is_ok(), "a bulk line is not JSON");
        }
        let action_line: serde_json::Value = serde_json::from_slice(lines[0]).unwrap_or_default();
        let name =
            action_line.as_object().and_then(|a| a.values().next()).and_then(|m| m["_index"].as_str()).unwrap_or("");
        assert!(
            !name.chars().any(|c| c.is_uppercase() || millrace_config::sink::INDEX_FORBIDDEN.contains(c)),
            "an index name Elasticsearch refuses: {name:?}"
        );
    }
    same_fields_as_serde(json);
    // The same for a data stream, where a document without a time gets the record's.
    bulk_body.clear();
    if bulk::encode_for_stream(&record, &IndexName::parse("logs-app-default").expect("a name"), &mut bulk_body).is_ok()
    {
        let lines: Vec<&[u8]> = bulk_body.split(|&b| b == b'\n').collect();
        assert_eq!(lines.len(), 3, "a data stream entry is two lines");
        let doc: serde_json::Value = serde_json::from_slice(lines[1]).unwrap_or_default();
        assert!(doc.get("@timestamp").is_some(), "a data stream document without @timestamp");
    }
    // Any bytes as a plain-text record: always one document of two NDJSON lines.
    bulk_body.clear();
    bulk::encode_text(&record, &index, action, &mut bulk_body);
    let lines: Vec<&[u8]> = bulk_body.split(|&b| b == b'\n').collect();
    assert_eq!(lines.len(), 3, "a text document is two lines");
    assert!(lines[..2].iter().all(|l| serde_json::from_slice::<serde_json::Value>(l).is_ok()), "not JSON");
    let _ = bulk::verdicts(json, usize::from(pick % 4), action);
    // The same bytes as records in line protocol (the `format = "influx"` reader): every point
    // written is one line the reader accepts again, unchanged but for its timestamp.
    let mut points = Vec::new();
    use millrace_sinks::influxdb::lines::{encode_lines, Times};
    let times = Times { input: Precision::Ns, output: precision, record_ms: record.timestamp_ms };
    if encode_lines(json, times, &mut points).is_ok() {
        for point in points.split(|&b| b == b'\n') {
            let mut again = Vec::new();
            let same = Times { input: precision, output: precision, record_ms: None };
            let reread = encode_lines(point, same, &mut again);
            assert!(reread.is_ok(), "a written point does not read back: {:?}", String::from_utf8_lossy(point));
            assert_eq!(again, point, "a point changed on a second pass");
        }
    }
    // And as Telegraf JSON (the `format = "json"` reader): its points read back as line protocol.
    points.clear();
    let times = Times { input: Precision::S, output: precision, record_ms: None };
    if millrace_sinks::influxdb::telegraf_json::encode_telegraf_json(json, times, &mut points).is_ok() {
        let mut again = Vec::new();
        let reread = encode_lines(&points, Times { input: precision, ..times }, &mut again);
        assert!(
            reread.is_ok(),
            "Telegraf JSON gave points that do not read back ({:?}): {:?}",
            reread.err(),
            String::from_utf8_lossy(&points)
        );
    }
}

/// Config text for each component, parsed and validated as `millrace broker|agent|sink` does.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = millrace_config::parse_broker(text, "fuzz.toml");
    let _ = millrace_config::parse_agent(text, "fuzz.toml");
    let _ = millrace_config::parse_sink(text, "fuzz.toml");
}
