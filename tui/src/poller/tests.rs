//! The poller without a cluster: an unreachable bootstrap list is reported, not hung on. Against
//! a real broker (what it reads, and that a steady refresh sends exactly what [`plan_requests`]
//! predicts) it is tested in the integration tests (`tests/tests/tui_poller.rs`).

use super::*;

fn config(bootstrap: &str) -> PollerConfig {
    PollerConfig {
        bootstrap: bootstrap.split(',').map(str::to_string).collect(),
        metrics: MetricsSource::Discover,
        request_timeout: Duration::from_secs(5),
        configs_every: Duration::from_secs(3_600),
        security: Default::default(),
    }
}

#[tokio::test]
async fn an_unreachable_cluster_is_reported() {
    // Bind then drop a listener to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let mut poller = Poller::new(config(&format!("{addr},127.0.0.1:{port}"))).unwrap();
    match poller.poll().await {
        Poll::Unreachable { error, requests, .. } => {
            assert!(error.contains(&addr), "{error}");
            assert_eq!(requests.kafka_total(), 0, "nothing was sent: {requests:?}");
        }
        Poll::Answered(_) => panic!("nothing listens on {addr}"),
    }
    // Adding a bootstrap address keeps the configured ones, tried first.
    poller.add_bootstrap("127.0.0.1:1");
    assert_eq!(poller.config.bootstrap, vec![addr.clone(), addr, "127.0.0.1:1".to_string()]);
}
