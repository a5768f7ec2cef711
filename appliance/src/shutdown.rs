//! The shutdown signal, injected: commands and pipelines wait on a [`Shutdown`] instead
//! of a hard-wired Ctrl-C, so that the binary can wire it to Ctrl-C and SIGTERM (a
//! daemon under systemd is stopped with SIGTERM) and tests can trigger it themselves.

use tokio::sync::watch;

/// A shutdown that can be waited on; cheap to clone.
#[derive(Clone, Debug)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
}

/// What requests the shutdown.
#[derive(Debug)]
pub struct Trigger {
    tx: watch::Sender<bool>,
}

impl Trigger {
    pub fn request(&self) {
        self.tx.send_replace(true);
    }
}

impl Shutdown {
    pub fn new() -> (Trigger, Shutdown) {
        let (tx, rx) = watch::channel(false);
        (Trigger { tx }, Shutdown { rx })
    }

    /// Requested by the first Ctrl-C (SIGINT) or SIGTERM; a second one ends the
    /// process at once (exit code 130). Must be called inside a runtime.
    pub fn on_signals() -> std::io::Result<Shutdown> {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let (trigger, shutdown) = Shutdown::new();
        tokio::spawn(async move {
            for n in 0.. {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
                if n > 0 {
                    std::process::exit(130);
                }
                tracing::warn!("stopping (a second Ctrl-C stops at once)");
                trigger.request();
            }
        });
        Ok(shutdown)
    }

    pub fn is_requested(&self) -> bool {
        *self.rx.borrow()
    }

    /// Resolves once a shutdown is requested (never, if its trigger is dropped unused).
    pub async fn requested(&self) {
        let mut rx = self.rx.clone();
        if rx.wait_for(|r| *r).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waiters_wake_when_requested_and_not_before() {
        let (t, s) = Shutdown::new();
        assert!(!s.is_requested());
        let waiting = tokio::spawn({
            let s = s.clone();
            async move { s.requested().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        t.request();
        tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .unwrap()
            .unwrap();
        assert!(s.is_requested());
    }
}
