//! Interrupts: the first SIGINT/SIGTERM asks the engine to stop and roll back gracefully, the
//! second makes it stop at once and leave the journal. The source is injectable: tests call
//! [`Interrupts::trigger`]; the CLI connects it to the process's signals.

use std::sync::Arc;

use tokio::sync::watch;

/// A counter of interrupts that the engine watches.
#[derive(Debug, Clone)]
pub struct Interrupts {
    tx: Arc<watch::Sender<u32>>,
}

impl Default for Interrupts {
    fn default() -> Self {
        Self::new()
    }
}

impl Interrupts {
    pub fn new() -> Self {
        let (tx, _rx) = watch::channel(0);
        Self { tx: Arc::new(tx) }
    }

    /// Records one interrupt.
    pub fn trigger(&self) {
        self.tx.send_modify(|n| *n = n.saturating_add(1));
    }

    /// Interrupts so far.
    pub fn count(&self) -> u32 {
        *self.tx.borrow()
    }

    /// Resolves once at least `n` interrupts have been recorded.
    pub async fn wait_for(&self, n: u32) {
        let mut rx = self.tx.subscribe();
        // The sender lives as long as `self`, so `wait_for` cannot fail.
        let _ = rx.wait_for(|c| *c >= n).await;
    }

    /// Counts every SIGINT and SIGTERM the process receives from now on. Must be called inside a
    /// tokio runtime; the listener lives as long as the runtime.
    #[cfg(unix)]
    pub fn listen_to_signals(&self) -> std::io::Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    s = int.recv() => if s.is_none() { break },
                    s = term.recv() => if s.is_none() { break },
                }
                me.trigger();
            }
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_and_waits() {
        let i = Interrupts::new();
        assert_eq!(i.count(), 0);
        let j = i.clone();
        let waiter = tokio::spawn(async move { j.wait_for(2).await });
        i.trigger();
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        i.trigger();
        waiter.await.unwrap();
        assert_eq!(i.count(), 2);
    }
}
