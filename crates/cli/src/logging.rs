//! The CLI's `tracing` subscriber: events of ferry's libraries (a backend's warning, a retry, a
//! re-login) become log lines of the run, in the same format and through the same channel as the
//! engine's own lines, so that only [`crate::output`] prints them.

use std::fmt::Write as _;

use ferry_core::engine::{Level, LogLine};
use tokio::sync::mpsc::UnboundedSender;

use crate::session::Event;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt as _};

/// Forwards events of ferry's crates at `min` or above to `tx`; active on this thread until the
/// guard is dropped.
pub(crate) fn install(tx: UnboundedSender<Event>, min: Level) -> tracing::subscriber::DefaultGuard {
    let layer = Forward {
        tx,
        min,
        start: std::time::Instant::now(),
    };
    tracing::subscriber::set_default(tracing_subscriber::registry().with(layer))
}

struct Forward {
    tx: UnboundedSender<Event>,
    min: Level,
    start: std::time::Instant,
}

fn level(l: &tracing::Level) -> Level {
    match *l {
        tracing::Level::ERROR => Level::Error,
        tracing::Level::WARN => Level::Warn,
        tracing::Level::INFO => Level::Info,
        _ => Level::Debug,
    }
}

/// `message key=value ...`, as the event's fields come.
#[derive(Default)]
struct Text {
    message: String,
    fields: String,
}

impl Visit for Text {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Forward {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        // Only ferry's own crates: the HTTP and Kubernetes clients' debug chatter stays out.
        if !meta.target().starts_with("ferry") {
            return;
        }
        let lvl = level(meta.level());
        if lvl < self.min {
            return;
        }
        let mut t = Text::default();
        event.record(&mut t);
        let _ = self.tx.send(Event::Line(LogLine {
            level: lvl,
            elapsed: self.start.elapsed(),
            message: format!("{}{}", t.message, t.fields),
        }));
    }
}
