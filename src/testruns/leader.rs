//! The gate the controller reconciles behind ([`LeaderGate`]): with two replicas,
//! exactly one reconciles, the one holding the Lease (`crate::lease`'s `Leadership`).
//! [`WatchGate`] is a gate driven by a `tokio::sync::watch` flag: what the tests hand
//! the controller, and what a replica alone may use.

use std::future::Future;

/// Whether this replica leads, and the moments that changes.
pub trait LeaderGate: Send + 'static {
    /// Whether this replica leads now.
    fn is_leader(&self) -> bool;
    /// Completes once this replica leads (at once when it does).
    fn acquired(&mut self) -> impl Future<Output = ()> + Send + '_;
    /// Completes once this replica no longer leads (at once when it does not).
    fn lost(&mut self) -> impl Future<Output = ()> + Send + '_;
}

/// A gate following a `watch` flag: leading while it is `true`. A dropped sender
/// means leadership is gone for good.
#[derive(Debug, Clone)]
pub struct WatchGate {
    rx: tokio::sync::watch::Receiver<bool>,
    /// The sender of [`WatchGate::always`], kept as long as the gate.
    _always: Option<std::sync::Arc<tokio::sync::watch::Sender<bool>>>,
}

impl WatchGate {
    /// A gate and the sender that flips it.
    pub fn new(leading: bool) -> (tokio::sync::watch::Sender<bool>, Self) {
        let (tx, rx) = tokio::sync::watch::channel(leading);
        (tx, Self { rx, _always: None })
    }

    /// A gate that always leads: one replica, nothing to elect.
    pub fn always() -> Self {
        let (tx, rx) = tokio::sync::watch::channel(true);
        Self {
            rx,
            _always: Some(std::sync::Arc::new(tx)),
        }
    }

    fn closed(&self) -> bool {
        self.rx.has_changed().is_err()
    }
}

impl LeaderGate for WatchGate {
    fn is_leader(&self) -> bool {
        *self.rx.borrow() && !self.closed()
    }

    async fn acquired(&mut self) {
        let leading = self.rx.wait_for(|leading| *leading).await.is_ok();
        if !leading || self.closed() {
            // The sender is gone: leadership never comes back.
            std::future::pending::<()>().await;
        }
    }

    async fn lost(&mut self) {
        let _ = self.rx.wait_for(|leading| !*leading).await;
    }
}

/// `crate::lease`'s leadership is the gate of the service.
impl LeaderGate for crate::lease::Leadership {
    fn is_leader(&self) -> bool {
        crate::lease::Leadership::is_leader(self)
    }

    fn acquired(&mut self) -> impl Future<Output = ()> + Send + '_ {
        crate::lease::Leadership::acquired(self)
    }

    fn lost(&mut self) -> impl Future<Output = ()> + Send + '_ {
        crate::lease::Leadership::lost(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_watch_gate_follows_its_flag() {
        let (tx, mut gate) = WatchGate::new(false);
        assert!(!gate.is_leader());
        gate.lost().await;
        assert!(
            tokio::time::timeout(Duration::from_millis(50), gate.acquired())
                .await
                .is_err(),
            "not acquired while the flag is false"
        );
        tx.send_replace(true);
        gate.acquired().await;
        assert!(gate.is_leader());
        tx.send_replace(false);
        gate.lost().await;
        tx.send_replace(true);
        drop(tx);
        assert!(!gate.is_leader(), "a dropped sender leads no more");
        gate.lost().await;
        assert!(
            tokio::time::timeout(Duration::from_millis(50), gate.acquired())
                .await
                .is_err(),
            "a dropped sender never leads again"
        );
        let mut always = WatchGate::always();
        always.acquired().await;
        assert!(always.is_leader());
    }
}
