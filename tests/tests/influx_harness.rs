//! The InfluxDB harness against a real influxd (1.6 from Debian), and how InfluxDB answers the
//! writes a sink must handle: the status codes and error bodies are pinned here, so that a
//! server that answers differently fails this file rather than a sink test.

use millrace_tests::influx::{http_request, InfluxProcess};
use serde_json::Value;

/// Rows of the first series of the first result.
fn values(answer: &Value) -> Vec<Value> {
    answer["results"][0]["series"][0]["values"].as_array().cloned().unwrap_or_default()
}

/// The `error` string of a JSON error body such as `{"error":"…"}`.
fn error_of(body: &str) -> anyhow::Result<String> {
    let json: Value = serde_json::from_str(body)?;
    json["error"].as_str().map(str::to_string).ok_or_else(|| anyhow::anyhow!("no \"error\" in {body:?}"))
}

#[test]
fn line_protocol_round_trip_with_ms_precision() -> anyhow::Result<()> {
    let influx = InfluxProcess::start()?;
    influx.create_database("metrics")?;
    // Escapes: a space in the measurement name; a space, a comma and an equals sign in tag
    // values; a double quote and a backslash in string fields. Integers carry `i`; `20` is a
    // float; `T`/`F` are booleans. The third point has other fields than the first two, in
    // another series at the first point's millisecond.
    let body = concat!(
        r#"host\ stats,site=north\ pier,path=a\,b\=c load=0.25,procs=42i,big=9223372036854775807i,neg=-7i,up=true,note="said \"hi\"" 1700000000123"#,
        "\n",
        r#"host\ stats,site=south,path=plain load=20,procs=0i,big=-9223372036854775808i,neg=-1i,up=F,note="back\\slash é" 1700000000124"#,
        "\n",
        r#"host\ stats,site=east,path=x other=1i 1700000000123"#,
        "\n",
    );
    let (status, answer) = influx.write("metrics", "ms", body)?;
    eprintln!("write of 3 points: {status} {answer:?}");
    assert_eq!((status, answer.as_str()), (204, ""));

    let answer = influx.query("metrics", r#"SELECT * FROM "host stats""#)?;
    eprintln!("SELECT *: {answer}");
    let series = &answer["results"][0]["series"][0];
    assert_eq!(series["name"], "host stats");
    let columns: Vec<&str> = series["columns"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    assert_eq!(columns, ["time", "big", "load", "neg", "note", "other", "path", "procs", "site", "up"]);
    let mut rows: Vec<String> = values(&answer).iter().map(Value::to_string).collect();
    rows.sort();
    let mut expected: Vec<String> = [
        r#"[1700000000123,9223372036854775807,0.25,-7,"said \"hi\"",null,"a,b=c",42,"north pier",true]"#,
        r#"[1700000000124,-9223372036854775808,20,-1,"back\\slash é",null,"plain",0,"south",false]"#,
        r#"[1700000000123,null,null,null,null,1,"x",null,"east",null]"#,
    ]
    .iter()
    .map(|row| serde_json::from_str::<Value>(row).map(|v| v.to_string()))
    .collect::<Result<_, _>>()?;
    expected.sort();
    assert_eq!(rows, expected);

    let fields = influx.query("metrics", r#"SHOW FIELD KEYS FROM "host stats""#)?;
    eprintln!("SHOW FIELD KEYS: {fields}");
    let types: Vec<String> = values(&fields).iter().map(Value::to_string).collect();
    assert_eq!(
        types,
        [
            r#"["big","integer"]"#,
            r#"["load","float"]"#,
            r#"["neg","integer"]"#,
            r#"["note","string"]"#,
            r#"["other","integer"]"#,
            r#"["procs","integer"]"#,
            r#"["up","boolean"]"#,
        ]
    );

    // count(*) counts per field: no single count (nor the max) is the 3 points written.
    let counts = influx.query("metrics", r#"SELECT count(*) FROM "host stats""#)?;
    eprintln!("SELECT count(*): {counts}");
    assert_eq!(influx.count_points("metrics", "host stats")?, 3);
    Ok(())
}

#[test]
fn field_type_conflict_is_a_partial_write_that_keeps_the_other_points() -> anyhow::Result<()> {
    let influx = InfluxProcess::start()?;
    influx.create_database("sink")?;
    let (status, body) = influx.write("sink", "ms", "disk used=1.5 1700000000000\n")?;
    assert_eq!((status, body.as_str()), (204, ""), "the first write creates the field as a float");

    let batch = "disk used=2.5 1700000001000\ndisk used=\"full\" 1700000002000\ndisk used=3.5 1700000003000\n";
    let (status, body) = influx.write("sink", "ms", batch)?;
    eprintln!("string into a float field, among two floats: {status} {body:?}");
    assert_eq!(status, 400);
    assert_eq!(
        error_of(&body)?,
        r#"partial write: field type conflict: input field "used" on measurement "disk" is type string, already exists as type float dropped=1"#
    );
    // The sink relies on this: a 400 "partial write" stored every point but the dropped ones, so
    // the batch must not be retried (that would only repeat the 400).
    let answer = influx.query("sink", "SELECT used FROM disk")?;
    eprintln!("stored: {answer}");
    let stored: Vec<String> = values(&answer).iter().map(Value::to_string).collect();
    assert_eq!(stored, ["[1700000000000,1.5]", "[1700000001000,2.5]", "[1700000003000,3.5]"]);

    let (status, body) = influx.write("sink", "ms", "disk used=4i 1700000004000\n")?;
    eprintln!("integer into a float field: {status} {body:?}");
    assert_eq!(status, 400);
    assert!(error_of(&body)?.contains("is type integer, already exists as type float dropped=1"), "{body}");
    assert_eq!(influx.count_points("sink", "disk")?, 3);
    Ok(())
}

/// A conflict between two points of one request, on a field that does not exist yet, is a
/// partial write when the shard (a 7-day group for the default retention policy) exists; but
/// when the request itself creates the shard, influxd 1.6 rejects the whole request with a bare
/// "field type conflict" (no "partial write") and stores none of its points.
#[test]
fn type_conflict_within_one_request() -> anyhow::Result<()> {
    let influx = InfluxProcess::start()?;
    influx.create_database("fresh")?;
    let batch = "mixed v=1 1700000000000\nmixed v=\"x\" 1700000001000\nmixed v=2 1700000002000\nok v=1 1700000003000\n";
    let (status, body) = influx.write("fresh", "ms", batch)?;
    eprintln!("conflict inside the request that creates the shard: {status} {body:?}");
    assert_eq!(status, 400);
    assert_eq!(error_of(&body)?, "field type conflict");
    assert_eq!(influx.count_points("fresh", "mixed")?, 0);
    assert_eq!(influx.count_points("fresh", "ok")?, 0, "not even the points without a conflict");

    // The same request again, now that an earlier write created the shard.
    let (status, body) = influx.write("fresh", "ms", "other v=1 1700000000000\n")?;
    assert_eq!(status, 204, "{body}");
    let (status, body) = influx.write("fresh", "ms", batch)?;
    eprintln!("the same request into an existing shard: {status} {body:?}");
    assert_eq!(status, 400);
    assert_eq!(
        error_of(&body)?,
        r#"partial write: field type conflict: input field "v" on measurement "mixed" is type string, already exists as type float dropped=1"#
    );
    assert_eq!(influx.count_points("fresh", "mixed")?, 2);
    assert_eq!(influx.count_points("fresh", "ok")?, 1);
    Ok(())
}

#[test]
fn unparsable_lines_are_a_partial_write_that_keeps_the_other_lines() -> anyhow::Result<()> {
    let influx = InfluxProcess::start()?;
    influx.create_database("sink")?;
    let (status, body) =
        influx.write("sink", "ms", "m v=1 1700000000000\nthis is not line protocol\nm v=2 1700000002000\n")?;
    eprintln!("one bad line among two good ones: {status} {body:?}");
    assert_eq!(status, 400);
    // dropped=0: lines that do not parse are not counted as dropped.
    assert_eq!(
        error_of(&body)?,
        "partial write: unable to parse 'this is not line protocol': invalid field format dropped=0"
    );
    assert_eq!(influx.count_points("sink", "m")?, 2);

    let (status, body) = influx.write("sink", "ms", "only garbage\n")?;
    eprintln!("nothing but a bad line: {status} {body:?}");
    assert_eq!(status, 400);
    assert!(error_of(&body)?.contains("unable to parse 'only garbage'"), "{body}");
    Ok(())
}

/// A precision influxd does not know is not an error: the timestamps are taken as nanoseconds.
#[test]
fn unknown_precision_is_taken_as_nanoseconds() -> anyhow::Result<()> {
    let influx = InfluxProcess::start()?;
    influx.create_database("sink")?;
    let (status, body) = influx.write("sink", "millis", "m v=1 1700000000000\n")?;
    eprintln!("precision=millis: {status} {body:?}");
    assert_eq!((status, body.as_str()), (204, ""));
    let answer = influx.query("sink", "SELECT v FROM m")?;
    eprintln!("stored: {answer}");
    let stored: Vec<String> = values(&answer).iter().map(Value::to_string).collect();
    assert_eq!(stored, ["[1700000,1]"], "1700000000000 ns is 1700000 ms");
    Ok(())
}

#[test]
fn missing_database_is_404_for_writes_and_a_statement_error_for_queries() -> anyhow::Result<()> {
    let influx = InfluxProcess::start()?;
    let (status, body) = influx.write("nope", "ms", "m v=1 1700000000000\n")?;
    eprintln!("write into a missing database: {status} {body:?}");
    assert_eq!(status, 404);
    assert_eq!(error_of(&body)?, r#"database not found: "nope""#);

    let form = "db=nope&q=SELECT%20%2A%20FROM%20m&epoch=ms";
    let headers = [("Content-Type", "application/x-www-form-urlencoded")];
    let (status, body) = http_request(&influx.http_addr(), "POST", "/query", &headers, form.as_bytes())?;
    eprintln!("query of a missing database: {status} {body:?}");
    assert_eq!(status, 200);
    let answer: Value = serde_json::from_str(&body)?;
    assert_eq!(answer["results"][0]["error"], "database not found: nope");
    let error = influx.query("nope", "SELECT * FROM m").err().map(|e| format!("{e:#}")).unwrap_or_default();
    assert!(error.contains("database not found: nope"), "query() must fail on a statement error: {error:?}");
    Ok(())
}

#[test]
fn body_over_max_body_size_is_413_and_writes_nothing() -> anyhow::Result<()> {
    let influx = InfluxProcess::start_with_http("  max-body-size = 1000\n")?;
    influx.create_database("sink")?;
    let lines: String = (0..60).map(|i| format!("m v={i} {}\n", 1_700_000_000_000u64 + i)).collect();
    assert!(lines.len() > 1000);
    let (status, body) = influx.write("sink", "ms", &lines)?;
    eprintln!("{} bytes over max-body-size = 1000: {status} {body:?}", lines.len());
    assert_eq!(status, 413);
    assert_eq!(error_of(&body)?, "Request Entity Too Large");
    assert_eq!(influx.count_points("sink", "m")?, 0);

    let half: String = lines.lines().take(30).map(|l| format!("{l}\n")).collect();
    assert!(half.len() <= 1000);
    let (status, body) = influx.write("sink", "ms", &half)?;
    eprintln!("{} bytes: {status} {body:?}", half.len());
    assert_eq!((status, body.as_str()), (204, ""));
    assert_eq!(influx.count_points("sink", "m")?, 30);
    Ok(())
}

#[test]
fn restart_keeps_the_data() -> anyhow::Result<()> {
    let mut influx = InfluxProcess::start()?;
    let url = influx.url();
    influx.create_database("sink")?;
    let (status, body) = influx.write("sink", "ms", "m v=1 1700000000000\nm v=2 1700000001000\n")?;
    assert_eq!(status, 204, "{body}");

    influx.stop()?;
    assert!(!influx.ping());
    match influx.write("sink", "ms", "m v=3 1700000002000\n") {
        Ok(answer) => panic!("a write while influxd is stopped was answered: {answer:?}"),
        Err(e) => eprintln!("write while stopped: {e:#}"),
    }
    influx.restart()?;
    assert_eq!(influx.url(), url, "same port after a restart");
    assert_eq!(influx.count_points("sink", "m")?, 2);

    // kill -9 right after a 204: the point is in the WAL (fsynced before the answer).
    let (status, body) = influx.write("sink", "ms", "m v=3 1700000002000\n")?;
    assert_eq!(status, 204, "{body}");
    influx.kill9();
    influx.restart()?;
    let answer = influx.query("sink", "SELECT v FROM m")?;
    eprintln!("after stop, restart, write, kill -9, restart: {answer}");
    let stored: Vec<String> = values(&answer).iter().map(Value::to_string).collect();
    assert_eq!(stored, ["[1700000000000,1]", "[1700000001000,2]", "[1700000002000,3]"]);
    Ok(())
}
