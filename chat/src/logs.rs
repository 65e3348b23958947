//! The library's log lines (`tracing`) at a terminal: each is printed through the line editor's
//! printer, above the prompt and the line being typed, like the chat's own lines, instead of
//! being written to stderr in the middle of that line.

use std::io::{self, Write};
use std::sync::Arc;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::ui::Ui;

/// Install the log subscriber of a chat at a terminal: lines through `ui`. `RUST_LOG` overrides
/// `default_filter`, as with `netaio_support::init_tracing`.
pub fn init(default_filter: &str, ui: Arc<Ui>, color: bool) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    // A second call keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(UiLog { ui })
        .with_ansi(color)
        .try_init();
}

/// Makes one [`LogLine`] per event.
#[derive(Debug, Clone)]
pub struct UiLog {
    ui: Arc<Ui>,
}

impl UiLog {
    /// Log lines to `ui`.
    pub fn new(ui: Arc<Ui>) -> Self {
        Self { ui }
    }
}

impl<'a> MakeWriter<'a> for UiLog {
    type Writer = LogLine;

    fn make_writer(&'a self) -> LogLine {
        LogLine {
            ui: self.ui.clone(),
            buf: Vec::new(),
        }
    }
}

/// One event's text, gathered and printed in one piece when the formatter is done with it (the
/// formatter writes an event in several pieces; the printer prints whole lines).
#[derive(Debug)]
pub struct LogLine {
    ui: Arc<Ui>,
    buf: Vec<u8>,
}

impl Write for LogLine {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            self.ui.log(&String::from_utf8_lossy(&self.buf));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn an_event_reaches_the_ui_in_one_piece() {
        let out = Shared::default();
        let ui = Arc::new(Ui::to_writer(Box::new(out.clone()), false));
        let subscriber = tracing_subscriber::fmt()
            .with_writer(UiLog::new(ui))
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(peer = "10.0.0.2:7000", "datagrams refused");
        });
        let text = String::from_utf8(out.0.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .unwrap_or_default();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains("WARN"), "{text}");
        assert!(
            text.contains("datagrams refused peer=\"10.0.0.2:7000\""),
            "{text}"
        );
    }
}
