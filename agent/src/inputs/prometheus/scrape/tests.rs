//! Tests of the scraper against a tiny local HTTP server: successful scrapes, failures that still
//! yield a `prometheus_scrape` point, and password redaction.

use super::*;
use crate::inputs::prometheus::fixtures::{tags, NODE_EXPORTER};
use crate::inputs::prometheus::DEFAULT_MAX_BODY_BYTES;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[test]
fn redacts_passwords_only() {
    assert_eq!(redact_url("http://10.0.0.7:9100/metrics"), "http://10.0.0.7:9100/metrics");
    assert_eq!(redact_url("http://scraper:s3cret@10.0.0.7:9100/metrics"), "http://scraper:***@10.0.0.7:9100/metrics");
    assert_eq!(redact_url("not a url"), "not a url");
}

/// What the test server answers on a path.
async fn respond(stream: &mut TcpStream, path: &str, accept: &str) -> std::io::Result<()> {
    let head = |status: &str, extra: &str| {
        format!("HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nConnection: close\r\n{extra}\r\n")
    };
    match path {
        "/metrics" if accept == ACCEPT => {
            let response =
                format!("{}{NODE_EXPORTER}", head("200 OK", &format!("Content-Length: {}\r\n", NODE_EXPORTER.len())));
            stream.write_all(response.as_bytes()).await
        }
        "/metrics" => stream.write_all(head("406 Not Acceptable", "Content-Length: 0\r\n").as_bytes()).await,
        "/fail" => {
            stream
                .write_all(format!("{}boom", head("500 Internal Server Error", "Content-Length: 4\r\n")).as_bytes())
                .await
        }
        "/huge-declared" => {
            stream.write_all(head("200 OK", "Content-Length: 1000000\r\n").as_bytes()).await?;
            stream.write_all(&vec![b'#'; 1_000_000]).await
        }
        "/huge-streamed" => {
            // No Content-Length: the body ends when the connection closes, so only counting
            // while reading can stop it.
            stream.write_all(head("200 OK", "").as_bytes()).await?;
            let line = "node_load1 0.21\n".repeat(512);
            for _ in 0..128 {
                stream.write_all(line.as_bytes()).await?;
            }
            Ok(())
        }
        "/bad" => {
            let body = "# TYPE up gauge\nup 1\nup{job=\"x} 1\n";
            stream
                .write_all(
                    format!("{}{body}", head("200 OK", &format!("Content-Length: {}\r\n", body.len()))).as_bytes(),
                )
                .await
        }
        "/latin1" => {
            let body = b"ok 1\nname{city=\"S\xe3o Paulo\"} 1\n";
            stream.write_all(head("200 OK", &format!("Content-Length: {}\r\n", body.len())).as_bytes()).await?;
            stream.write_all(body).await
        }
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok(())
        }
        _ => stream.write_all(head("404 Not Found", "Content-Length: 0\r\n").as_bytes()).await,
    }
}

/// A tiny HTTP/1.1 server on 127.0.0.1, one request per connection.
async fn serve() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else { return };
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let request = String::from_utf8_lossy(&request).into_owned();
                let path = request.split(' ').nth(1).unwrap_or("").to_string();
                let accept = request
                    .lines()
                    .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("accept")))
                    .map(|(_, v)| v.trim().to_string())
                    .unwrap_or_default();
                // The client hanging up on an oversized body is expected.
                let _ = respond(&mut stream, &path, &accept).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    addr
}

fn scraper() -> Scraper {
    Scraper::new(Duration::from_secs(5), 64 * 1024).unwrap()
}

fn assert_status(point: &MetricPoint, url: &str, up: i64, samples: i64) {
    assert_eq!(point.name, SCRAPE_MEASUREMENT);
    assert_eq!(point.tags, tags(&[("url", url)]));
    assert_eq!(point.fields["up"], FieldValue::Int(up));
    assert_eq!(point.fields["samples"], FieldValue::Int(samples));
    assert!(matches!(point.fields["duration_ms"], FieldValue::Float(ms) if ms >= 0.0), "{point:?}");
}

#[tokio::test]
async fn scrapes_an_endpoint_end_to_end() {
    let addr = serve().await;
    let url = format!("http://{addr}/metrics");
    let before = SystemTime::now();
    let points = scraper().scrape(&url).await.unwrap();
    assert_eq!(points.len(), 19);
    let (status, samples) = points.split_last().unwrap();
    assert_status(status, &url, 1, 18);
    assert!(status.timestamp >= before);
    // The samples are exactly what the parser makes of the body, plus the URL tag (compared
    // as Debug text because NaN != NaN).
    let mut expected = parse_text(NODE_EXPORTER, status.timestamp).unwrap();
    for point in &mut expected {
        point.tags.insert(URL_TAG.to_string(), url.clone());
    }
    assert_eq!(format!("{samples:?}"), format!("{expected:?}"));
}

#[tokio::test]
async fn failed_scrapes_name_the_url_and_yield_a_down_point() {
    let addr = serve().await;
    let scraper = scraper();

    let url = format!("http://{addr}/fail");
    let error = scraper.scrape(&url).await.unwrap_err();
    assert!(matches!(error.kind(), ScrapeErrorKind::Status { status } if status.as_u16() == 500), "{error}");
    assert_eq!(error.to_string(), format!("scraping {url}: HTTP status 500 Internal Server Error"));
    assert_status(&error.status_point(), &url, 0, 0);

    for path in ["/huge-declared", "/huge-streamed"] {
        let url = format!("http://{addr}{path}");
        let error = scraper.scrape(&url).await.unwrap_err();
        assert!(matches!(error.kind(), ScrapeErrorKind::BodyTooLarge { limit: 65536 }), "{error}");
        assert_eq!(
            error.to_string(),
            format!("scraping {url}: the response body is larger than the limit of 65536 bytes")
        );
        assert_status(&error.status_point(), &url, 0, 0);
    }

    let url = format!("http://{addr}/bad");
    let error = scraper.scrape(&url).await.unwrap_err();
    let ScrapeErrorKind::Parse(parse) = error.kind() else { panic!("{error}") };
    assert_eq!(parse.line(), 3, "{error}");
    assert!(error.to_string().starts_with(&format!("scraping {url}: line 3: expected `\"` closing")), "{error}");

    let url = format!("http://{addr}/latin1");
    let error = scraper.scrape(&url).await.unwrap_err();
    let ScrapeErrorKind::Parse(parse) = error.kind() else { panic!("{error}") };
    assert_eq!(parse.line(), 2, "{error}");
    assert!(error.to_string().contains("expected UTF-8 text"), "{error}");

    let url = format!("http://scraper:s3cret@{addr}/fail");
    let error = scraper.scrape(&url).await.unwrap_err();
    assert!(!error.to_string().contains("s3cret"), "{error}");
    assert_eq!(error.status_point().tags["url"], format!("http://scraper:***@{addr}/fail"));
}

#[tokio::test]
async fn connection_failures_timeouts_and_bad_urls_name_the_url() {
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    };
    let url = format!("http://{closed}/metrics");
    let error = scraper().scrape(&url).await.unwrap_err();
    assert!(matches!(error.kind(), ScrapeErrorKind::Connect { .. }), "{error}");
    assert!(error.to_string().starts_with(&format!("scraping {url}: cannot connect: ")), "{error}");
    assert!(error.to_string().to_lowercase().contains("refused"), "{error}");
    assert_status(&error.status_point(), &url, 0, 0);

    let addr = serve().await;
    let url = format!("http://{addr}/slow");
    let impatient = Scraper::new(Duration::from_millis(300), DEFAULT_MAX_BODY_BYTES).unwrap();
    let error = impatient.scrape(&url).await.unwrap_err();
    assert!(matches!(error.kind(), ScrapeErrorKind::Timeout { .. }), "{error}");
    assert_eq!(error.to_string(), format!("scraping {url}: no complete response within 300ms"));
    assert!(matches!(error.status_point().fields["duration_ms"], FieldValue::Float(ms) if ms >= 300.0));

    let error = scraper().scrape("ftp://10.0.0.7:9100/metrics").await.unwrap_err();
    assert!(matches!(error.kind(), ScrapeErrorKind::UnsupportedScheme { .. }), "{error}");
    assert!(error.to_string().starts_with("scraping ftp://10.0.0.7:9100/metrics: unsupported scheme `ftp`"));
    let error = scraper().scrape("10.0.0.7:9100").await.unwrap_err();
    assert!(matches!(error.kind(), ScrapeErrorKind::InvalidUrl { .. } | ScrapeErrorKind::UnsupportedScheme { .. }));
    assert!(error.to_string().starts_with("scraping 10.0.0.7:9100: "), "{error}");
}
