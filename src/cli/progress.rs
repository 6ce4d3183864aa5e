//! The progress bar of `pack` and `extract`: drawn on stderr from the
//! library's [`Counters`] by a thread of its own, only when stderr
//! is a terminal and `--quiet` was not given.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use repropack::progress::{Counters, Snapshot};

/// A running display; [`Display::finish`] (or drop) stops and clears it.
pub struct Display {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Starts a display of `progress` labelled `what` (`pack`, `extract`), or
/// returns `None` when stderr is no terminal or `quiet`.
pub fn start(what: &'static str, progress: &Arc<Counters>, quiet: bool) -> Option<Display> {
    if quiet || !std::io::stderr().is_terminal() {
        return None;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (p, done) = (Arc::clone(progress), Arc::clone(&stop));
    let thread = std::thread::Builder::new()
        .name("progress".into())
        .spawn(move || draw(what, &p, &done))
        .ok()?;
    Some(Display {
        stop,
        thread: Some(thread),
    })
}

impl Display {
    /// Stops drawing and clears the bar.
    pub fn finish(mut self) {
        self.stop_thread();
    }

    fn stop_thread(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            // Wake it from its 100 ms wait between draws: otherwise every
            // command with a bar ends up to 100 ms late.
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

impl Drop for Display {
    fn drop(&mut self) {
        self.stop_thread();
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
}

fn draw(what: &'static str, progress: &Counters, stop: &AtomicBool) {
    let bar = ProgressBar::new_spinner();
    bar.set_style(style("{prefix} {spinner} {msg} {elapsed}"));
    bar.set_prefix(what);
    let mut sized = false;
    loop {
        let s = progress.snapshot();
        match (s.total_bytes, s.total_entries) {
            (Some(bytes), Some(entries)) => {
                if !sized {
                    bar.set_style(style(
                        "{prefix} {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} {msg} ETA {eta}",
                    ));
                    bar.set_length(bytes);
                    sized = true;
                }
                bar.set_position(s.bytes.min(bytes));
                bar.set_message(format!("{}/{entries} entries", s.entries));
            }
            _ => bar.set_message(message(&s)),
        }
        bar.tick();
        if stop.load(Ordering::Relaxed) {
            break;
        }
        std::thread::park_timeout(Duration::from_millis(100));
    }
    bar.finish_and_clear();
}

/// The spinner's text before the totals are known.
fn message(s: &Snapshot) -> String {
    if s.entries == 0 {
        format!("staging: {} entries found", s.found)
    } else {
        format!("{} entries, {}", s.entries, indicatif::HumanBytes(s.bytes))
    }
}
