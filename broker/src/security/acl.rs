//! Kafka ACLs and the authorizer decision.
