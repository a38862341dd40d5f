//! Who may connect to the controller listener: [`PeerAccess`], built from the voters,
//! `controller.allowed_peers`, loopback and the broker's own addresses, with host names
//! re-resolved periodically.

use super::RESOLVE_TIMEOUT;
use millrace_config::broker::{parse_peer, PeerSpec};
use millrace_config::BrokerConfig;
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

/// Who may connect to the controller listener: fixed networks, and host names resolved to
/// addresses (re-resolved periodically and when an unknown address connects).
pub struct PeerAccess {
    networks: Vec<(IpAddr, u8)>,
    hosts: Vec<String>,
    /// Latest addresses of each host name; a failed resolution keeps the previous ones.
    resolved: RwLock<HashMap<String, Vec<IpAddr>>>,
    last_resolution: Mutex<Option<Instant>>,
}

impl PeerAccess {
    /// Allows `peers`, plus loopback (127.0.0.1 and ::1, not all of 127.0.0.0/8).
    pub fn new(peers: impl IntoIterator<Item = PeerSpec>) -> PeerAccess {
        let mut networks = vec![(IpAddr::V4(Ipv4Addr::LOCALHOST), 32), (IpAddr::V6(Ipv6Addr::LOCALHOST), 128)];
        let mut hosts = Vec::new();
        for peer in peers {
            match peer {
                PeerSpec::Network(addr, bits) => networks.push((addr.to_canonical(), bits)),
                PeerSpec::Host(host) if !hosts.contains(&host) => hosts.push(host),
                PeerSpec::Host(_) => {}
            }
        }
        PeerAccess { networks, hosts, resolved: RwLock::new(HashMap::new()), last_resolution: Mutex::new(None) }
    }

    /// The voters' hosts (of `"HOST:PORT"` addresses) and loopback.
    pub fn for_voters(voters: &BTreeMap<u64, String>) -> PeerAccess {
        PeerAccess::new(voters.values().filter_map(|addr| host_of(addr)))
    }

    /// A broker's controller peers: the voters, `controller.allowed_peers`, loopback and the
    /// addresses this broker itself is configured with.
    pub fn for_broker(config: &BrokerConfig) -> PeerAccess {
        let voters = config.voter_map();
        let listeners = config.effective_listeners();
        let own = listeners
            .iter()
            .flat_map(|l| [l.advertised_address(), l.listen.to_string()])
            .chain(config.controller_listen.map(|a| a.to_string()))
            .filter_map(|addr| host_of(&addr))
            .filter(|peer| !matches!(peer, PeerSpec::Network(ip, _) if ip.is_unspecified()));
        let allowed = config.controller.allowed_peers.iter().filter_map(|p| parse_peer(p).ok());
        PeerAccess::new(voters.values().filter_map(|addr| host_of(addr)).chain(allowed).chain(own).collect::<Vec<_>>())
    }

    /// Whether `ip` may connect.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        if self.networks.iter().any(|&(net, bits)| in_network(ip, net, bits)) {
            return true;
        }
        let resolved = self.resolved.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        resolved.values().any(|addrs| addrs.contains(&ip))
    }

    /// Resolves every host name again.
    pub async fn resolve(&self) {
        *self.last_resolution.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Instant::now());
        for host in &self.hosts {
            match tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host.as_str(), 0))).await {
                Ok(Ok(addrs)) => {
                    let addrs: Vec<IpAddr> = addrs.map(|a| a.ip().to_canonical()).collect();
                    let mut resolved = self.resolved.write().unwrap_or_else(|poisoned| poisoned.into_inner());
                    resolved.insert(host.clone(), addrs);
                }
                Ok(Err(e)) => {
                    tracing::warn!(%host, error = %e, "resolving a controller peer failed; keeping its previous addresses")
                }
                Err(_) => {
                    tracing::warn!(%host, "resolving a controller peer timed out; keeping its previous addresses")
                }
            }
        }
    }

    /// Whether a resolution is due after an unknown address connected (claims it if so).
    pub(super) fn claim_resolution(&self, min_age: Duration) -> bool {
        if self.hosts.is_empty() {
            return false;
        }
        let mut last = self.last_resolution.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if last.is_some_and(|at| at.elapsed() < min_age) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }
}

/// The host of `"HOST:PORT"` as a peer.
fn host_of(addr: &str) -> Option<PeerSpec> {
    let (host, _) = addr.rsplit_once(':')?;
    parse_peer(host.trim_matches(|c| c == '[' || c == ']')).ok()
}

/// Whether the first `bits` bits of `ip` and `net` agree (both canonical, same family).
fn in_network(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits.min(32))).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits.min(128))).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}
