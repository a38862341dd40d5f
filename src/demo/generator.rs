//! Web-server traffic for the demo: nginx "combined" access-log lines appended to a file at a
//! steady rate by a thread of their own.
//!
//! ```text
//! 203.0.113.7 - - [23/Nov/2026:11:00:00 +0000] "GET /products/42 HTTP/1.1" 200 5120
//!     "https://shop.example.com/" "Mozilla/5.0 …"    (one line)
//! ```

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How often the thread wakes to append what is due.
const TICK: Duration = Duration::from_millis(50);

const PAGES: &[&str] = &[
    "/",
    "/index.html",
    "/products",
    "/cart",
    "/checkout",
    "/login",
    "/account/orders",
    "/about",
    "/static/css/site.4f2a9c.css",
    "/static/js/app.81be2d.js",
    "/favicon.ico",
    "/robots.txt",
];
const SEARCHES: &[&str] = &["shoes", "red+jacket", "socks", "gift+card", "umbrella", "backpack"];
const REFERERS: &[&str] = &[
    "https://shop.example.com/",
    "https://shop.example.com/products",
    "https://www.google.com/",
    "https://duckduckgo.com/",
    "https://news.example.org/deals",
];
const AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
    "curl/8.5.0",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
];

/// Picks for made-up traffic from a seeded generator.
struct Rng(fastrand::Rng);

impl Rng {
    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.0.u64(..n.max(1))
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        self.0.choice(items.iter().copied()).unwrap_or_default()
    }
}

/// nginx's `$time_local` in UTC: `23/Nov/2026:11:00:00 +0000`.
fn time_local(at: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(at).format("%d/%b/%Y:%H:%M:%S +0000").to_string()
}

/// Makes up access-log lines.
pub struct AccessLog {
    rng: Rng,
}

impl AccessLog {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> AccessLog {
        AccessLog { rng: Rng(fastrand::Rng::with_seed(seed)) }
    }

    /// One line (without its newline) for a request at `at`.
    pub fn line(&mut self, at: SystemTime) -> String {
        let rng = &mut self.rng;
        // A few hundred returning clients from the documentation address ranges.
        let ip = match rng.below(3) {
            0 => format!("203.0.113.{}", 1 + rng.below(120)),
            1 => format!("198.51.100.{}", 1 + rng.below(80)),
            _ => format!("192.0.2.{}", 1 + rng.below(60)),
        };
        let (method, path) = match rng.below(100) {
            0..=59 => ("GET", rng.pick(PAGES).to_string()),
            60..=74 => ("GET", format!("/products/{}", 1000 + rng.below(400))),
            75..=84 => ("GET", format!("/search?q={}", rng.pick(SEARCHES))),
            85..=94 => ("POST", rng.pick(&["/api/v1/cart", "/login", "/checkout", "/api/v1/events"]).to_string()),
            95..=97 => ("HEAD", "/".to_string()),
            _ => ("PUT", format!("/api/v1/cart/{}", rng.below(10_000))),
        };
        let status = match rng.below(1000) {
            0..=869 => 200,
            870..=899 => 304,
            900..=914 => 301,
            915..=969 => 404,
            970..=989 => 500,
            _ => 503,
        };
        let bytes = match status {
            200 if method == "HEAD" => 0,
            200 => 200 + rng.below(48_000),
            304 => 0,
            301 => 162,
            404 => 548 + rng.below(40),
            _ => 177 + rng.below(400),
        };
        let referer = if rng.below(3) == 0 { "-" } else { rng.pick(REFERERS) };
        let agent = rng.pick(AGENTS);
        format!("{ip} - - [{}] \"{method} {path} HTTP/1.1\" {status} {bytes} \"{referer}\" \"{agent}\"", time_local(at))
    }
}

/// The generator thread; stopped (and joined) on [`Generator::stop`] or drop.
pub struct Generator {
    stop: Arc<AtomicBool>,
    lines: Arc<AtomicU64>,
    handle: Option<JoinHandle<std::io::Result<()>>>,
}

impl Generator {
    /// Creates (or appends to) `path` and appends `rate` lines per second to it, for `run_for`
    /// when given.
    pub fn start(path: &Path, rate: u32, run_for: Option<Duration>) -> std::io::Result<Generator> {
        let mut file = OpenOptions::new().create(true).append(true).open(path)?;
        let seed = SystemTime::now().duration_since(UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64);
        let mut log = AccessLog::new(seed);
        // The first line before returning: a tailer started next finds a file with content, so the
        // fingerprint identifying the file covers bytes rather than an empty file.
        file.write_all(format!("{}\n", log.line(SystemTime::now())).as_bytes())?;
        let stop = Arc::new(AtomicBool::new(false));
        let lines = Arc::new(AtomicU64::new(1));
        let handle = {
            let (stop, lines) = (stop.clone(), lines.clone());
            std::thread::Builder::new()
                .name("demo-generator".into())
                .spawn(move || generate(file, log, rate, run_for, &stop, &lines))?
        };
        Ok(Generator { stop, lines, handle: Some(handle) })
    }

    /// Lines appended so far.
    pub fn lines(&self) -> u64 {
        self.lines.load(Ordering::Relaxed)
    }

    /// True while lines are still being appended.
    pub fn is_running(&self) -> bool {
        self.handle.as_ref().is_some_and(|h| !h.is_finished())
    }

    /// Stops the thread; its I/O error, if it stopped because of one.
    pub fn stop(&mut self) -> std::io::Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        match self.handle.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(std::io::Error::other("the generator thread panicked")),
            None => Ok(()),
        }
    }
}

impl Drop for Generator {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// Appends `rate` lines a second after the first one, which [`Generator::start`] wrote.
fn generate(
    mut file: File,
    mut log: AccessLog,
    rate: u32,
    run_for: Option<Duration>,
    stop: &AtomicBool,
    lines: &AtomicU64,
) -> std::io::Result<()> {
    let started = Instant::now();
    let mut written: u64 = 1;
    let mut chunk = String::new();
    while !stop.load(Ordering::Relaxed) {
        let elapsed = started.elapsed();
        if run_for.is_some_and(|limit| elapsed >= limit) {
            break;
        }
        // Lines due by now, so the rate holds however long each tick took.
        let due = 1 + (elapsed.as_secs_f64() * f64::from(rate)) as u64;
        if due > written {
            chunk.clear();
            let now = SystemTime::now();
            for _ in written..due {
                chunk.push_str(&log.line(now));
                chunk.push('\n');
            }
            // Whole lines in one write: the tailer never sees half a line at a pause.
            file.write_all(chunk.as_bytes())?;
            written = due;
            lines.store(written, Ordering::Relaxed);
        }
        std::thread::sleep(TICK);
    }
    file.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_formatted_like_nginx() {
        assert_eq!(time_local(UNIX_EPOCH), "01/Jan/1970:00:00:00 +0000");
        assert_eq!(time_local(UNIX_EPOCH + Duration::from_secs(1_795_431_600)), "23/Nov/2026:11:00:00 +0000");
        // A leap day.
        assert_eq!(time_local(UNIX_EPOCH + Duration::from_secs(1_709_164_799)), "28/Feb/2024:23:59:59 +0000");
        assert_eq!(time_local(UNIX_EPOCH + Duration::from_secs(1_709_164_800)), "29/Feb/2024:00:00:00 +0000");
    }

    #[test]
    fn lines_look_like_combined_format_with_mostly_200() {
        let mut log = AccessLog::new(42);
        let at = UNIX_EPOCH + Duration::from_secs(1_795_431_600);
        let lines: Vec<String> = (0..2000).map(|_| log.line(at)).collect();
        let mut ok = 0;
        for line in &lines {
            // ip - - [time] "request" status bytes "referer" "agent"
            let (ip, rest) = line.split_once(" - - [").unwrap();
            assert_eq!(ip.split('.').count(), 4, "{line}");
            let (time, rest) = rest.split_once("] \"").unwrap();
            assert_eq!(time, "23/Nov/2026:11:00:00 +0000");
            let (request, rest) = rest.split_once("\" ").unwrap();
            assert!(request.ends_with(" HTTP/1.1"), "{line}");
            let mut fields = rest.splitn(3, ' ');
            let status: u16 = fields.next().unwrap().parse().unwrap();
            let _bytes: u64 = fields.next().unwrap().parse().unwrap();
            assert!(fields.next().unwrap().matches('"').count() == 4, "{line}");
            ok += usize::from(status == 200);
        }
        assert!((1500..1900).contains(&ok), "{ok} of 2000 are 200");
        assert!(lines.iter().any(|l| l.contains("\" 404 ")) && lines.iter().any(|l| l.contains("\" 500 ")));
    }

    #[test]
    fn the_thread_appends_at_the_rate_and_stops() {
        let dir = std::env::temp_dir().join(format!("millrace-generator-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("access.log");
        let mut generator = Generator::start(&path, 400, Some(Duration::from_millis(500))).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while generator.is_running() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let stopped_by_itself = !generator.is_running();
        let stopped = generator.stop();
        let text = std::fs::read_to_string(&path);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(stopped_by_itself, "the generator did not stop after its 500 ms");
        stopped.unwrap();
        let text = text.unwrap();
        let count = text.lines().count() as u64;
        assert_eq!(count, generator.lines());
        assert!((100..=200).contains(&count), "{count} lines in 500 ms at 400/s");
        assert!(text.ends_with('\n'));
    }
}
