//! millrace agent: tails log files, samples host metrics, receives syslog, scrapes Prometheus
//! endpoints and ships it all to the broker, at least once.
//!
//! Layout (work in progress, issue 5):
//! - [`event`]: the record format (log documents and metric points).
//! - [`inputs`]: sources of events.

pub mod event;
pub mod inputs;
