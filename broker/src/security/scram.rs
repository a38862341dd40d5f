//! SCRAM (RFC 5802 / 7677) and SASL/PLAIN message handling.
