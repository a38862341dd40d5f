//! The scanner against serde_json's reading of the same texts.
#![allow(clippy::unwrap_used)]

use super::*;

/// Reads one value with the scanner and checks it against serde_json's reading of the same
/// text (or that both refuse it).
fn agrees_with_serde(json: &str) {
    let scanner = Scanner::new(json.as_bytes());
    let ours = scanner.and_then(|mut s| {
        let v = s.value()?;
        s.finish()?;
        Ok(match v {
            Scalar::Text(span) => Err(s.text(span).into_owned()),
            other => Ok(other),
        })
    });
    let theirs: Result<serde_json::Value, _> = serde_json::from_str(json);
    let skipped = Scanner::new(json.as_bytes()).and_then(|mut s| {
        s.skip_value()?;
        s.finish()
    });
    assert_eq!(skipped.is_ok(), theirs.is_ok(), "skipping {json:?}: {skipped:?}");
    match (ours, theirs) {
        (Ok(Err(a)), Ok(serde_json::Value::String(b))) => assert_eq!(a, b, "{json}"),
        (Ok(Ok(Scalar::Number { text, integer })), Ok(serde_json::Value::Number(n))) => {
            let text = Scanner::new(json.as_bytes()).unwrap().text(text).into_owned();
            // serde_json reads `-0` as a float (it keeps the sign); as an integer it is 0.
            assert_eq!(integer, n.is_i64() || n.is_u64() || text == "-0", "{json}");
            assert_eq!(text.parse::<f64>().unwrap(), n.as_f64().unwrap(), "{json}");
        }
        (Ok(Ok(Scalar::Bool(a))), Ok(serde_json::Value::Bool(b))) => assert_eq!(a, b),
        (Ok(Ok(Scalar::Null)), Ok(serde_json::Value::Null)) => {}
        (Ok(Ok(Scalar::Composite)), Ok(serde_json::Value::Object(_) | serde_json::Value::Array(_))) => {}
        (Err(_), Err(_)) => {}
        (ours, theirs) => panic!("{json}: scanner {ours:?}, serde_json {theirs:?}"),
    }
}

#[test]
fn values_read_as_serde_json_reads_them() {
    for json in [
        r#""plain""#,
        r#""tab\there \"quoted\" back\\slash \/ \b\f\n\r""#,
        r#""\u00e9t\u00E9 \ud83d\ude00 mixed é""#,
        r#""""#,
        "0",
        "-0",
        "12345678901234567890",
        "-9223372036854775808",
        "1.5",
        "-0.25e-3",
        "6.02E+23",
        "true",
        "false",
        "null",
        "  \n {\"a\": [1, {\"b\": null}, \"x\"], \"c\": {}} ",
        "[]",
        "[[[]],{\"a\":[{}]},\"s\",-1.5e3,true,null]",
        "{\"a\":{\"b\":{\"c\":[1,[2,{\"d\":\"e\"}]]}}}",
        // Refused by both:
        "[{]}",
        "{\"a\":[}",
        "[1,{\"a\":2,}]",
        "{\"a\":{\"b\":1}",
        "[[1]]]",
        "01",
        "1.",
        ".5",
        "1e",
        "+1",
        "-",
        "tru",
        "nul",
        r#""unterminated"#,
        r#""bad \x escape""#,
        r#""\ud83d alone""#,
        r#""\ude00 alone""#,
        r#""\u12G4""#,
        "\"raw\u{1}control\"",
        "{\"a\" 1}",
        "{\"a\":1,}",
        "[1,]",
        "[1 2]",
        "{1:2}",
        "{\"a\":1} trailing",
        "",
    ] {
        agrees_with_serde(json);
    }
}

#[test]
fn skipping_has_no_depth_limit_and_still_checks_the_grammar() {
    let skip = |json: &str| {
        let mut s = Scanner::new(json.as_bytes())?;
        s.skip_value()?;
        s.finish()
    };
    // Past the 64 levels kept in a word, and far past any recursion limit.
    for depth in [63, 64, 65, 100_000] {
        let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        assert_eq!(skip(&arrays), Ok(()), "{depth}");
        let mixed = format!("{}1{}", "{\"a\":[".repeat(depth), "]}".repeat(depth));
        assert_eq!(skip(&mixed), Ok(()), "{depth}");
        // A bracket closing the wrong kind of composite, at the deepest level.
        let wrong = format!("{}1{}{}", "{\"a\":[".repeat(depth), "}", "]}".repeat(depth));
        assert!(skip(&wrong).is_err(), "{depth}");
        assert!(skip(&"[".repeat(depth)).is_err(), "unclosed at {depth}");
    }
    // Numbers beyond a float's range are refused even when skipped, as serde_json does.
    for (json, in_range) in [
        ("[1e308,-1e-999,0.5e-400]", true),
        (r#"{"a":[1,{"b":1e309}]}"#, false),
        ("-2E+400", false),
        (&"9".repeat(299), true),
        (&"9".repeat(400), false),
    ] {
        assert_eq!(skip(json).is_ok(), in_range, "{json}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(json).is_ok(), in_range, "serde_json: {json}");
    }
}

#[test]
fn plain_runs_end_where_a_byte_by_byte_search_ends_them() {
    let naive = |b: &[u8]| b.iter().position(|&c| c < 0x20 || c == b'"' || c == b'\\');
    let alphabet = [b'a', b'"', b'\\', 0x1f, 0x20, 0x00, 0x7f, 0x80, 0xc3, 0xa9, 0xff, b'!', b'#', b'[', b']'];
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for len in 0..40 {
        for _ in 0..200 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    // Mostly plain bytes, as in real strings.
                    if seed.is_multiple_of(8) {
                        alphabet[(seed >> 8) as usize % alphabet.len()]
                    } else {
                        b'a' + (seed >> 16) as u8 % 26
                    }
                })
                .collect();
            assert_eq!(plain_run(&bytes), naive(&bytes), "{bytes:?}");
        }
    }
}

#[test]
fn objects_are_read_key_by_key() {
    let mut s = Scanner::new(br#"{"a":1, "b\n":{"x":[true]}, "c":"v"}"#).unwrap();
    let mut o = s.begin_object().unwrap();
    let key = |s: &mut Scanner<'_>, o: &mut Object| s.next_key(o).unwrap().map(|k| s.text(k).into_owned());
    assert_eq!(key(&mut s, &mut o).unwrap(), "a");
    let Scalar::Number { text, integer: true } = s.value().unwrap() else { panic!("not an integer") };
    assert_eq!(s.text(text), "1");
    assert_eq!(key(&mut s, &mut o).unwrap(), "b\n");
    assert!(s.at_object());
    assert_eq!(s.value().unwrap(), Scalar::Composite);
    assert_eq!(key(&mut s, &mut o).unwrap(), "c");
    let Scalar::Text(v) = s.value().unwrap() else { panic!("not a string") };
    assert_eq!(s.text(v), "v");
    assert_eq!(s.next_key(&mut o).unwrap(), None);
    s.finish().unwrap();

    let mut empty = Scanner::new(b" { } ").unwrap();
    let mut o = empty.begin_object().unwrap();
    assert_eq!(empty.next_key(&mut o).unwrap(), None);
    empty.finish().unwrap();

    for bad in [&br#"{"a":1 "b":2}"#[..], br#"{,"a":1}"#, br#"{"a":1,}"#] {
        let mut s = Scanner::new(bad).unwrap();
        let mut o = s.begin_object().unwrap();
        let outcome = (|| {
            while s.next_key(&mut o)?.is_some() {
                s.value()?;
            }
            Ok::<_, String>(())
        })();
        assert!(outcome.is_err(), "{}", String::from_utf8_lossy(bad));
    }

    let deep = "[".repeat(MAX_DEPTH + 2) + &"]".repeat(MAX_DEPTH + 2);
    assert!(Scanner::new(deep.as_bytes()).unwrap().value().unwrap_err().to_string().contains("deeply"));
    assert!(Scanner::new(b"\xff").is_err());
}

#[test]
fn spans_scalars_and_their_results_fit_in_two_registers() {
    // Larger, they are returned through memory and put together there piecewise, which cost a
    // store-forwarding stall per token (the InfluxDB encoder took 1.06 instead of 0.57 µs a record).
    assert_eq!(std::mem::size_of::<Span>(), 8);
    assert_eq!(std::mem::size_of::<Option<Span>>(), 8);
    assert!(std::mem::size_of::<Result<Scalar, ScanError>>() <= 16);
    assert!(std::mem::size_of::<Result<Option<Span>, ScanError>>() <= 16);
}

#[test]
fn spans_keep_their_offsets_and_errors_their_messages() {
    let span = Span::new(7, MAX_TEXT, true);
    assert_eq!((span.range(), span.escaped()), (7..MAX_TEXT, true));
    assert_eq!((Span::new(0, 3, false).range(), Span::new(0, 3, false).escaped()), (0..3, false));
    let err = Scanner::new(br#"{"a" 1}"#).and_then(|mut s| s.value()).unwrap_err();
    assert_eq!(err.to_string(), "expected `:` at byte 5");
    let err = Scanner::new(b"\"\\u12g4\"").and_then(|mut s| s.value()).unwrap_err();
    assert_eq!(String::from(err), "invalid \\u escape at byte 3");
    assert_eq!(Scanner::new(b"ab\xffc").err().map(|e| e.to_string()).as_deref(), Some("not UTF-8 at byte 2"));
}
