//! Background jobs: work on a named thread, one result through a bounded channel, a repaint
//! request when it is ready, and a cancel flag the work can check.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};

/// Handed to the work so that it can stop early.
#[derive(Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// The shared flag, for library code that keeps it (model runs).
    pub fn shared_flag(&self) -> Arc<AtomicBool> {
        self.0.clone()
    }

    /// The flag itself, for library code that polls an `AtomicBool`.
    pub fn flag(&self) -> &AtomicBool {
        &self.0
    }
}

/// A running job; [`Job::poll`] returns its result once, on the UI thread.
pub struct Job<T> {
    pub label: String,
    receiver: Receiver<T>,
    cancel: CancelToken,
    started: std::time::Instant,
}

/// Starts `work` on a thread called `thread_name`; `on_done` runs on that thread after the result
/// is sent (the app passes `request_repaint`).
pub fn spawn_job<T: Send + 'static>(
    thread_name: &str,
    label: impl Into<String>,
    on_done: impl Fn() + Send + 'static,
    work: impl FnOnce(&CancelToken) -> T + Send + 'static,
) -> std::io::Result<Job<T>> {
    let (sender, receiver) = std::sync::mpsc::sync_channel(1);
    let cancel = CancelToken::default();
    let token = cancel.clone();
    std::thread::Builder::new()
        .name(thread_name.to_owned())
        .spawn(move || {
            let result = work(&token);
            // The receiver may be gone (job replaced or app closing): nothing to do then.
            if sender.send(result).is_ok() {
                on_done();
            }
        })?;
    Ok(Job {
        label: label.into(),
        receiver,
        cancel,
        started: std::time::Instant::now(),
    })
}

/// What [`Job::poll`] found.
pub enum JobStatus<T> {
    Running,
    Done(T),
    /// The thread ended without a result (it panicked).
    Lost,
}

impl<T> Job<T> {
    pub fn poll(&self) -> JobStatus<T> {
        match self.receiver.try_recv() {
            Ok(result) => JobStatus::Done(result),
            Err(TryRecvError::Empty) => JobStatus::Running,
            Err(TryRecvError::Disconnected) => JobStatus::Lost,
        }
    }

    pub fn cancel(&self) {
        self.cancel.0.store(true, Ordering::Relaxed);
    }

    pub fn elapsed(&self) -> std::time::Duration {
        self.started.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_delivers_once_and_can_be_cancelled() {
        let job = spawn_job("test-job", "adding", || {}, |_| 2 + 2).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let value = loop {
            match job.poll() {
                JobStatus::Done(v) => break v,
                JobStatus::Running if std::time::Instant::now() < deadline => std::thread::yield_now(),
                _ => panic!("job did not finish"),
            }
        };
        assert_eq!(value, 4);
        // Once the thread has ended (it drops its sender after `on_done`), a second poll finds
        // no result, never the same one twice.
        loop {
            match job.poll() {
                JobStatus::Lost => break,
                JobStatus::Running if std::time::Instant::now() < deadline => std::thread::yield_now(),
                JobStatus::Running => panic!("the job's thread did not end"),
                JobStatus::Done(_) => panic!("a result was delivered twice"),
            }
        }

        let job = spawn_job(
            "test-cancel",
            "waiting",
            || {},
            |cancel| {
                while !cancel.is_cancelled() {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                "stopped"
            },
        )
        .unwrap();
        job.cancel();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            if let JobStatus::Done(v) = job.poll() {
                assert_eq!(v, "stopped");
                break;
            }
            assert!(std::time::Instant::now() < deadline, "cancel was not seen");
            std::thread::yield_now();
        }
    }
}
