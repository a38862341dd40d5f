//! Enrichment steps: user agents into ECS `user_agent.*` (woothee's rule set), and IP addresses
//! into ECS `*.geo.*` from a MaxMind-format database.

use crate::event::{get_path, set_path};
use maxminddb::{geoip2, Reader};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

/// woothee's answer for what it cannot tell.
const UNKNOWN: &str = "UNKNOWN";

/// Distinct user agents whose parse is kept: web logs repeat a few hundred agents, and parsing
/// one costs more than the rest of a line (Logstash's useragent filter caches the same way).
/// When full the cache starts over, so hostile agents cannot grow it.
const USER_AGENT_CACHE: usize = 4096;

/// A parsed user agent: `(key under the target, value)`, or None when woothee knows neither the
/// browser nor the OS.
type Parsed = Option<Vec<(&'static str, String)>>;

fn user_agent_cache() -> &'static Mutex<HashMap<String, Parsed>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Parsed>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Parses the user agent in `field` into `target` (`name`, `version`, `os.name`, `os.version`,
/// `os.full`, `device.name`). Err when the field is missing or the agent is not recognised.
pub fn user_agent(doc: &mut Map<String, Value>, field: &str, target: &str) -> Result<(), String> {
    let Some(Value::String(agent)) = get_path(doc, field) else { return Err(format!("no text field {field}")) };
    let cached = user_agent_cache().lock().unwrap_or_else(|p| p.into_inner()).get(agent.as_str()).cloned();
    let parsed = match cached {
        Some(parsed) => parsed,
        None => {
            let parsed = parse_user_agent(agent);
            let mut cache = user_agent_cache().lock().unwrap_or_else(|p| p.into_inner());
            if cache.len() >= USER_AGENT_CACHE {
                cache.clear();
            }
            cache.insert(agent.clone(), parsed.clone());
            parsed
        }
    };
    let parts = parsed.ok_or_else(|| format!("{field}: not a user agent woothee knows"))?;
    for (key, value) in parts {
        set_path(doc, &format!("{target}.{key}"), Value::from(value));
    }
    Ok(())
}

fn parse_user_agent(agent: &str) -> Parsed {
    // Web servers escape quotes in the logged header; the parser wants the header as sent.
    let agent = agent.replace("\\\"", "\"").replace("\\x22", "\"");
    let parsed = woothee::parser::Parser::new().parse(&agent)?;
    let known = |s: &str| !s.is_empty() && s != UNKNOWN;
    if !known(parsed.name) && !known(parsed.os) {
        return None;
    }
    let mut parts = Vec::new();
    let mut set = |key: &'static str, value: &str| {
        if known(value) {
            parts.push((key, value.to_string()));
        }
    };
    set("name", parsed.name);
    set("version", parsed.version);
    set("os.name", parsed.os);
    set("os.version", &parsed.os_version);
    if known(parsed.os) && known(&parsed.os_version) {
        set("os.full", &format!("{} {}", parsed.os, parsed.os_version));
    }
    // ECS's device.name is the hardware; woothee tells it only for phones, by their OS.
    match parsed.category {
        "smartphone" | "mobilephone" => set("device.name", parsed.os),
        "crawler" => set("device.name", "Spider"),
        "pc" => set("device.name", "Other"),
        _ => {}
    }
    Some(parts)
}

/// The English one of a database's names.
fn english<'a>(names: Option<&std::collections::BTreeMap<&'a str, &'a str>>) -> Option<&'a str> {
    names.and_then(|n| n.get("en").copied())
}

/// An opened GeoIP database.
pub struct GeoIp {
    reader: Reader<Vec<u8>>,
}

impl std::fmt::Debug for GeoIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoIp").field("type", &self.reader.metadata.database_type).finish()
    }
}

impl GeoIp {
    /// Opens a City or Country database.
    pub fn open(path: &Path) -> Result<GeoIp, String> {
        let reader = Reader::open_readfile(path).map_err(|e| format!("opening {}: {e}", path.display()))?;
        Ok(GeoIp { reader })
    }

    /// Looks up the address in `field` and writes what the database knows under `target`; Err
    /// when the field is no address or the database does not know it.
    pub fn apply(&self, doc: &mut Map<String, Value>, field: &str, target: &str) -> Result<(), String> {
        let Some(Value::String(text)) = get_path(doc, field) else { return Err(format!("no text field {field}")) };
        let ip: IpAddr = text.trim().parse().map_err(|_| format!("{field} ({text}) is not an IP address"))?;
        let city: geoip2::City<'_> = self
            .reader
            .lookup(ip)
            .map_err(|e| format!("looking up {ip}: {e}"))?
            .ok_or_else(|| format!("{ip} is not in the database"))?;
        let mut geo = Map::new();
        let mut put = |key: &str, value: Option<Value>| {
            if let Some(value) = value {
                geo.insert(key.to_string(), value);
            }
        };
        if let Some(continent) = &city.continent {
            put("continent_code", continent.code.map(Value::from));
            put("continent_name", english(continent.names.as_ref()).map(Value::from));
        }
        let country_code = city.country.as_ref().and_then(|c| c.iso_code);
        if let Some(country) = &city.country {
            put("country_iso_code", country.iso_code.map(Value::from));
            put("country_name", english(country.names.as_ref()).map(Value::from));
        }
        if let Some(region) = city.subdivisions.as_ref().and_then(|s| s.first()) {
            let code = match (country_code, region.iso_code) {
                (Some(country), Some(region)) => Some(Value::from(format!("{country}-{region}"))),
                _ => None,
            };
            put("region_iso_code", code);
            put("region_name", english(region.names.as_ref()).map(Value::from));
        }
        if let Some(c) = &city.city {
            put("city_name", english(c.names.as_ref()).map(Value::from));
        }
        if let Some(postal) = city.postal.as_ref().and_then(|p| p.code) {
            put("postal_code", Some(Value::from(postal)));
        }
        if let Some(location) = &city.location {
            if let (Some(lat), Some(lon)) = (location.latitude, location.longitude) {
                put("location", Some(serde_json::json!({ "lat": lat, "lon": lon })));
            }
            put("timezone", location.time_zone.map(Value::from));
        }
        if geo.is_empty() {
            return Err(format!("{ip}: the database has no location for it"));
        }
        set_path(doc, target, Value::Object(geo));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn browsers_phones_and_crawlers_become_ecs_user_agent_fields() {
        let mut doc = Map::new();
        set_path(
            &mut doc,
            "user_agent.original",
            Value::from("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"),
        );
        user_agent(&mut doc, "user_agent.original", "user_agent").unwrap();
        let ua = Value::Object(doc.clone())["user_agent"].clone();
        assert_eq!((ua["name"].as_str(), ua["version"].as_str()), (Some("Chrome"), Some("120.0.0.0")));
        assert_eq!((ua["os"]["name"].as_str(), ua["os"]["version"].as_str()), (Some("Windows 10"), Some("NT 10.0")));
        assert_eq!(ua["original"].as_str().map(|s| s.starts_with("Mozilla")), Some(true), "the original stays");

        set_path(&mut doc, "user_agent.original", Value::from("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"));
        user_agent(&mut doc, "user_agent.original", "ua").unwrap();
        assert_eq!(Value::Object(doc.clone())["ua"]["device"]["name"], "iPhone");

        set_path(
            &mut doc,
            "user_agent.original",
            Value::from("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"),
        );
        user_agent(&mut doc, "user_agent.original", "bot").unwrap();
        assert_eq!(Value::Object(doc.clone())["bot"]["name"], "Googlebot");

        set_path(&mut doc, "user_agent.original", Value::from("x"));
        assert!(user_agent(&mut doc, "user_agent.original", "none").is_err());
        assert!(user_agent(&mut Map::new(), "user_agent.original", "none").is_err());
    }
}

#[cfg(test)]
mod geoip_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn addresses_in_the_database_get_ecs_geo_fields_and_others_fail() {
        let berlin = serde_json::json!({
            "city": {"names": {"en": "Berlin", "de": "Berlin"}},
            "continent": {"code": "EU", "names": {"en": "Europe"}},
            "country": {"iso_code": "DE", "names": {"en": "Germany"}},
            "location": {"latitude": 52.52, "longitude": 13.405, "time_zone": "Europe/Berlin"},
            "subdivisions": [{"iso_code": "BE", "names": {"en": "Land Berlin"}}],
        });
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("city.mmdb");
        std::fs::write(&path, super::super::test_mmdb::city_database(&[([81, 2, 69, 0], 24, berlin)])).unwrap();
        let db = GeoIp::open(&path).unwrap();
        let mut doc = Map::new();
        set_path(&mut doc, "source.ip", Value::from("81.2.69.160"));
        db.apply(&mut doc, "source.ip", "source.geo").unwrap();
        let geo = Value::Object(doc)["source"]["geo"].clone();
        assert_eq!(geo["country_iso_code"], "DE");
        assert_eq!(geo["country_name"], "Germany");
        assert_eq!(geo["continent_name"], "Europe");
        assert_eq!(geo["region_iso_code"], "DE-BE");
        assert_eq!(geo["region_name"], "Land Berlin");
        assert_eq!(geo["city_name"], "Berlin");
        assert_eq!(geo["location"], serde_json::json!({"lat": 52.52, "lon": 13.405}));
        assert_eq!(geo["timezone"], "Europe/Berlin");
        for (ip, says) in [("81.2.70.1", "not in the database"), ("nonsense", "not an IP address")] {
            let mut doc = Map::new();
            set_path(&mut doc, "source.ip", Value::from(ip));
            let e = db.apply(&mut doc, "source.ip", "source.geo").unwrap_err();
            assert!(e.contains(says), "{ip}: {e}");
        }
        std::fs::write(&path, b"not a database").unwrap();
        assert!(GeoIp::open(&path).is_err());
    }
}
