//! CPU cost per line of the agent's parsing: `cargo run --release -p millrace-agent --example
//! transform_cost [LINES] [ROUNDS] [NAME-PART]`. Generates nginx combined-format lines (IPv4 and IPv6 clients,
//! `-` fields, browser, phone, crawler and tool user agents, several zones), builds the event the
//! file input builds, and times only the steps, per variant; prints each round and the median.

use millrace_agent::pipeline::Processors;
use millrace_config::agent::transforms::{Module, Transform};
use serde_json::{Map, Value};
use std::time::Instant;

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        // xorshift64: deterministic lines, no dependency.
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len() as u64) as usize]
    }
}

const AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "curl/8.5.0",
    "-",
];

fn line(r: &mut Rng) -> String {
    let client = if r.below(10) == 0 {
        format!("2001:db8:{:x}::{:x}", r.below(65536), r.below(65536))
    } else {
        format!("{}.{}.{}.{}", 1 + r.below(223), r.below(256), r.below(256), 1 + r.below(254))
    };
    let user = r.pick(&["-", "-", "-", "alice", "bob"]);
    let month = r.pick(&["Jan", "Mar", "Jun", "Sep", "Dec"]);
    let zone = r.pick(&["+0000", "+0200", "-0500", "+0530"]);
    let path = r.pick(&["/", "/index.html", "/api/v1/users", "/static/app.js", "/images/logo.png", "/search"]);
    let query = if r.below(3) == 0 { format!("?id={}&page={}", r.below(100_000), r.below(50)) } else { String::new() };
    let status = r.pick(&["200", "200", "200", "201", "304", "404", "500"]);
    let referrer = r.pick(&["-", "https://www.example.com/", "https://www.google.com/search?q=widgets"]);
    format!(
        "{client} - {user} [{:02}/{month}/2026:{:02}:{:02}:{:02} {zone}] \"{} {path}{query} HTTP/1.1\" {status} {} \"{referrer}\" \"{}\"",
        1 + r.below(28),
        r.below(24),
        r.below(60),
        r.below(60),
        r.pick(&["GET", "GET", "POST", "HEAD"]),
        r.below(200_000),
        r.pick(AGENTS),
    )
}

fn transforms(toml_text: &str) -> Vec<Transform> {
    #[derive(serde::Deserialize)]
    struct Steps {
        transforms: Vec<Transform>,
    }
    match toml::from_str::<Steps>(toml_text) {
        Ok(steps) => steps.transforms,
        Err(e) => panic!("bad steps: {e}"),
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let lines: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    // Only the variants whose name contains this (all when absent).
    let only = args.next().unwrap_or_default();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let text: Vec<String> = (0..lines).map(|_| line(&mut rng)).collect();
    let none = millrace_config::agent::Processors::default();
    let variants: Vec<(&str, Processors)> = vec![
        ("module nginx.access (with user agent)", Processors::with_transforms(&none, Some((Module::NginxAccess, true, None)), &[])),
        (
            "grok COMBINEDAPACHELOG + timestamp HTTPDATE",
            Processors::with_transforms(
                &none,
                None,
                &transforms(
                    "[[transforms]]\ngrok = { patterns = [\"%{COMBINEDAPACHELOG}\"] }\n\
                     [[transforms]]\ntimestamp = { field = \"timestamp\", formats = [\"HTTPDATE\"], remove = true }\n",
                ),
            ),
        ),
        (
            "dissect + timestamp HTTPDATE",
            Processors::with_transforms(
                &none,
                None,
                &transforms(
                    "[[transforms]]\ndissect = { tokenizer = '%{source.address} %{} %{user.name} [%{ts}] \"%{http.request.method} %{url.original} %{http.version}\" %{http.response.status_code} %{http.response.body.bytes} \"%{http.request.referrer}\" \"%{user_agent.original}\"', target_prefix = \"\" }\n\
                     [[transforms]]\ntimestamp = { field = \"ts\", formats = [\"HTTPDATE\"], remove = true }\n",
                ),
            ),
        ),
    ]
    .into_iter()
    .map(|(name, p)| (name, p.unwrap_or_else(|e| panic!("{name}: {e}"))))
    .collect();
    for (name, processors) in variants.iter().filter(|(name, _)| name.contains(only.as_str())) {
        let mut per_line = Vec::new();
        for round in 0..rounds {
            let mut events: Vec<Map<String, Value>> = text
                .iter()
                .map(|l| {
                    let mut doc = Map::new();
                    doc.insert("@timestamp".into(), Value::from("2026-12-04T08:00:00.000Z"));
                    doc.insert("message".into(), Value::from(l.as_str()));
                    doc
                })
                .collect();
            let start = Instant::now();
            let mut failed = 0;
            // Each event is dropped once processed, as the agent does after encoding it.
            for mut doc in events.drain(..) {
                processors.apply(&mut doc);
                failed += usize::from(doc.contains_key("tags"));
            }
            let ns = start.elapsed().as_nanos() as f64 / lines as f64;
            println!("{name}: round {} {ns:.0} ns/line ({failed} failed)", round + 1);
            per_line.push(ns);
        }
        per_line.sort_by(f64::total_cmp);
        println!("{name}: median {:.0} ns/line over {rounds} rounds of {lines} lines", per_line[per_line.len() / 2]);
    }
}
