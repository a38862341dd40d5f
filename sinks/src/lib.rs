//! millrace sinks: consumer-group workers that forward topics to Elasticsearch and InfluxDB.
//!
//! Not built yet: planned in the sinks issue, after consumer groups and the agent. This crate
//! exports nothing that could be mistaken for a working component.
