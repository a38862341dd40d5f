//! A panic anywhere in `millrace agent` or `millrace sink` — a task, a thread, a client library's
//! callback — stops the process in order and makes it exit with an error. Left alone, a panicked
//! task leaves a process that runs on without it (or ends with status 0), and a supervisor never
//! restarts it.

use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::Notify;

static PANICKED: AtomicBool = AtomicBool::new(false);
static PANIC: Notify = Notify::const_new();

/// Chains a hook after the current one (which prints the panic): logs it, marks the process as
/// failed and wakes [`wait`].
pub fn install() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        previous(info);
        tracing::error!(panic = %info, "a task panicked; stopping, to exit with an error");
        PANICKED.store(true, Ordering::SeqCst);
        // Stores a permit when nobody waits yet, so the panic is never missed.
        PANIC.notify_one();
    }));
}

/// Whether anything panicked since [`install`].
pub fn panicked() -> bool {
    PANICKED.load(Ordering::SeqCst)
}

/// Completes once something panicked.
pub async fn wait() {
    PANIC.notified().await;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn a_panicking_thread_or_task_is_noticed() {
        install();
        assert!(!panicked());
        let _ = std::thread::spawn(|| panic!("a bug on a thread")).join();
        tokio::time::timeout(std::time::Duration::from_secs(5), wait()).await.unwrap();
        assert!(panicked());
        let _ = tokio::spawn(async { panic!("a bug in a task") }).await;
        tokio::time::timeout(std::time::Duration::from_secs(5), wait()).await.unwrap();
    }
}
