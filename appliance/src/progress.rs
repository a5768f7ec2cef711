//! Progress bars on stderr, drawn only when stderr is a terminal and output is not JSON.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Clone, Copy)]
pub struct Progress {
    enabled: bool,
}

pub struct Bar {
    bar: ProgressBar,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    pub fn new(json: bool) -> Self {
        Progress {
            enabled: !json && std::io::stderr().is_terminal(),
        }
    }

    /// A bar of bytes that follows `read()` until [`Bar::finish`].
    pub fn follow(
        &self,
        label: &str,
        total: Option<u64>,
        read: impl Fn() -> u64 + Send + 'static,
    ) -> Bar {
        if !self.enabled {
            return Bar {
                bar: ProgressBar::hidden(),
                ticker: None,
            };
        }
        let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
        let style = if total.is_some() {
            "{prefix} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}"
        } else {
            "{prefix} {bytes} {binary_bytes_per_sec} {elapsed}"
        };
        if let Ok(s) = ProgressStyle::with_template(style) {
            bar.set_style(s.progress_chars("=> "));
        }
        bar.set_prefix(label.to_string());
        let b = bar.clone();
        let ticker = tokio::spawn(async move {
            loop {
                b.set_position(read());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Bar {
            bar,
            ticker: Some(ticker),
        }
    }
}

impl Bar {
    pub fn finish(self) {
        if let Some(t) = self.ticker {
            t.abort();
        }
        self.bar.finish_and_clear();
    }
}
