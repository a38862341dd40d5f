//! What record validation adds to a produce request, per record, beside kafka-protocol's own
//! decoder (which materialises every record) on the same batches:
//! `cargo bench -p millrace-broker --bench validate`. Batches are shaped as producers send them:
//! 1,000 records of 100 bytes, each codec.

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use millrace_broker::log::batch::validate;
use millrace_broker::log::validator::{validate_records, ValidationConfig};
use std::hint::black_box;
use std::time::Instant;

const RECORDS: usize = 1_000;
const ROUNDS: usize = 200;

fn batch(compression: Compression) -> Vec<u8> {
    let now = 1_795_431_600_000;
    let records: Vec<Record> = (0..RECORDS)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: 7,
            producer_epoch: 0,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: i as i32,
            timestamp: now + i as i64,
            key: Some(Bytes::from(format!("host-{:03}", i % 64))),
            value: Some(Bytes::from(format!("{:0>88}", i))),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    if RecordBatchEncoder::encode(&mut buf, &records, &RecordEncodeOptions { version: 2, compression }).is_err() {
        eprintln!("encoding a {compression:?} batch failed");
        std::process::exit(1);
    }
    buf.to_vec()
}

fn per_record(started: Instant) -> f64 {
    started.elapsed().as_nanos() as f64 / (RECORDS * ROUNDS) as f64
}

fn main() {
    let config = ValidationConfig {
        compacted: true,
        max_decompressed_bytes: 32 << 20,
        now_ms: 1_795_431_600_000,
        timestamp_before_max_ms: None,
        timestamp_after_max_ms: Some(3_600_000),
    };
    println!("{:<8} {:>10} {:>16} {:>22} {:>8}", "codec", "bytes", "validate ns/rec", "kafka-protocol ns/rec", "ratio");
    for compression in [Compression::None, Compression::Lz4, Compression::Zstd, Compression::Snappy, Compression::Gzip]
    {
        let batch = batch(compression);
        let Ok(header) = validate(&batch) else {
            eprintln!("the {compression:?} batch does not validate");
            std::process::exit(1);
        };
        let started = Instant::now();
        for _ in 0..ROUNDS {
            black_box(validate_records(black_box(&batch), &header, &config).is_ok());
        }
        let ours = per_record(started);
        let started = Instant::now();
        for _ in 0..ROUNDS {
            let mut bytes = Bytes::copy_from_slice(&batch);
            black_box(RecordBatchDecoder::decode(&mut bytes).map(|set| set.records.len()).unwrap_or(0));
        }
        let theirs = per_record(started);
        println!(
            "{:<8} {:>10} {:>16.1} {:>22.1} {:>8.2}",
            format!("{compression:?}"),
            batch.len(),
            ours,
            theirs,
            ours / theirs
        );
    }
}
