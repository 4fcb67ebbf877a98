//! Time, as berth's timers see it.
//!
//! Work that waits for hours (token renewal) takes a [`Clock`], so that tests can move time
//! forward by hand with a [`ManualClock`] instead of waiting, while the real daemon uses
//! [`SystemClock`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

/// A source of the current time and of sleeps.
pub trait Clock: Send + Sync + 'static {
    /// The current wall-clock time.
    fn now(&self) -> SystemTime;
    /// Completes after `d` of this clock's time.
    fn sleep(&self, d: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// The real clock: the system's time and tokio's timers.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn sleep(&self, d: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(tokio::time::sleep(d))
    }
}

/// A clock that moves only when told to, for tests.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<SystemTime>,
    tick: watch::Sender<SystemTime>,
    sleepers: watch::Sender<usize>,
}

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: SystemTime) -> Self {
        ManualClock {
            now: Mutex::new(start),
            tick: watch::channel(start).0,
            sleepers: watch::channel(0).0,
        }
    }

    /// Moves time forward, waking the sleeps that are due.
    pub fn advance(&self, d: Duration) {
        let mut now = self.now.lock().expect("clock lock");
        *now += d;
        self.tick.send_replace(*now);
    }

    /// Waits until at least `n` sleeps are pending: the moment a loop under test has
    /// finished its work and gone back to sleep.
    pub async fn wait_for_sleepers(&self, n: usize) {
        let mut rx = self.sleepers.subscribe();
        let _ = rx.wait_for(|count| *count >= n).await;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.now.lock().expect("clock lock")
    }

    fn sleep(&self, d: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        let deadline = self.now() + d;
        let mut rx = self.tick.subscribe();
        Box::pin(async move {
            self.sleepers.send_modify(|n| *n += 1);
            let _guard = Decrement(&self.sleepers);
            let _ = rx.wait_for(|now| *now >= deadline).await;
        })
    }
}

struct Decrement<'a>(&'a watch::Sender<usize>);

impl Drop for Decrement<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}
