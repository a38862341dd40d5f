//! A tiny MaxMind DB (format 2.0) writer for the tests: IPv4 networks with GeoIP2-City-shaped
//! records, so GeoIP enrichment is tested against the real reader without shipping a database.

use serde_json::Value;

/// Writes a database with `networks` (`(address, prefix length, record)`).
pub fn city_database(networks: &[([u8; 4], u8, Value)]) -> Vec<u8> {
    // A binary trie over the address bits; a record is a child node, data, or nothing.
    #[derive(Clone, Copy)]
    enum Record {
        Empty,
        Node(usize),
        Data(usize),
    }
    let mut nodes: Vec<[Record; 2]> = vec![[Record::Empty; 2]];
    let mut data = Vec::new();
    for (address, prefix, record) in networks {
        let offset = data.len();
        encode(record, &mut data);
        let bits = u32::from_be_bytes(*address);
        let mut node = 0;
        for depth in 0..*prefix {
            let bit = ((bits >> (31 - depth)) & 1) as usize;
            if depth + 1 == *prefix {
                nodes[node][bit] = Record::Data(offset);
            } else {
                node = match nodes[node][bit] {
                    Record::Node(next) => next,
                    _ => {
                        nodes.push([Record::Empty; 2]);
                        let next = nodes.len() - 1;
                        nodes[node][bit] = Record::Node(next);
                        next
                    }
                };
            }
        }
    }
    let count = nodes.len();
    let mut out = Vec::new();
    for node in &nodes {
        for record in node {
            let value = match *record {
                Record::Empty => count,
                Record::Node(next) => next,
                Record::Data(offset) => count + 16 + offset,
            };
            out.extend_from_slice(&(value as u32).to_be_bytes()[1..]);
        }
    }
    out.extend_from_slice(&[0u8; 16]);
    out.extend_from_slice(&data);
    out.extend_from_slice(b"\xAB\xCD\xEFMaxMind.com");
    let metadata = serde_json::json!({
        "binary_format_major_version": {"u16": 2},
        "binary_format_minor_version": {"u16": 0},
        "build_epoch": {"u64": 1_796_000_000u64},
        "database_type": "GeoIP2-City",
        "description": {"en": "millrace test database"},
        "ip_version": {"u16": 4},
        "languages": ["en"],
        "node_count": {"u32": count},
        "record_size": {"u16": 24},
    });
    encode(&metadata, &mut out);
    out
}

fn control(kind: u8, size: usize, out: &mut Vec<u8>) {
    let (extended, kind) = if kind > 7 { (Some(kind - 7), 0) } else { (None, kind) };
    let head = kind << 5;
    match size {
        0..=28 => out.push(head | size as u8),
        29..=284 => out.extend_from_slice(&[head | 29, (size - 29) as u8]),
        _ => {
            let rest = (size - 285) as u16;
            out.push(head | 30);
            out.extend_from_slice(&rest.to_be_bytes());
        }
    }
    if let Some(extended) = extended {
        // The extended type byte follows the control byte (before any size bytes for the
        // sizes used here, which fit the control byte).
        let at = out.len()
            - if size <= 28 {
                0
            } else if size <= 284 {
                1
            } else {
                2
            };
        out.insert(at, extended);
    }
}

/// Encodes JSON as MaxMind DB data: strings, doubles, objects, arrays; `{"u16": n}`-style
/// objects for the unsigned integers the metadata needs.
fn encode(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::String(s) => {
            control(2, s.len(), out);
            out.extend_from_slice(s.as_bytes());
        }
        Value::Number(n) => {
            control(3, 8, out);
            out.extend_from_slice(&n.as_f64().unwrap_or_default().to_be_bytes());
        }
        Value::Object(map) if map.len() == 1 && ["u16", "u32", "u64"].iter().any(|k| map.contains_key(*k)) => {
            let (kind, n) =
                map.iter().next().map(|(k, v)| (k.as_str(), v.as_u64().unwrap_or_default())).unwrap_or_default();
            let bytes = n.to_be_bytes();
            let skip = bytes.iter().take_while(|b| **b == 0).count();
            let kind = match kind {
                "u16" => 5,
                "u32" => 6,
                _ => 9,
            };
            control(kind, 8 - skip, out);
            out.extend_from_slice(&bytes[skip..]);
        }
        Value::Object(map) => {
            control(7, map.len(), out);
            for (key, value) in map {
                encode(&Value::String(key.clone()), out);
                encode(value, out);
            }
        }
        Value::Array(items) => {
            control(11, items.len(), out);
            for item in items {
                encode(item, out);
            }
        }
        Value::Bool(b) => control(14, usize::from(*b), out),
        Value::Null => {}
    }
}
