//! When ECR tokens are renewed.
//!
//! A token is renewed at half its remaining lifetime (6 hours for ECR's 12), so there is
//! always time for a few failed attempts before it lapses. What a server says about expiry
//! is not trusted blindly: a missing expiry, an absurd one, or one already in the past (as
//! some ECR stand-ins answer) gives a bounded interval, never a busy loop; failures back off
//! exponentially with jitter; and the last good token stays in place until it expires.

use std::future::Future;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use super::{EcrError, Token};
use crate::clock::Clock;

/// The bounds of renewal.
#[derive(Clone, Debug)]
pub struct Schedule {
    /// Never renew sooner than this after the last attempt.
    pub min_interval: Duration,
    /// Never wait longer than this between renewals.
    pub max_interval: Duration,
    /// The interval when the server gave no usable expiry.
    pub unknown_expiry: Duration,
    /// The first retry delay after a failure; doubled for each further failure.
    pub backoff_base: Duration,
    /// The longest retry delay.
    pub backoff_max: Duration,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            min_interval: Duration::from_secs(5 * 60),
            max_interval: Duration::from_secs(6 * 3600),
            unknown_expiry: Duration::from_secs(3600),
            backoff_base: Duration::from_secs(15),
            backoff_max: Duration::from_secs(15 * 60),
        }
    }
}

impl Schedule {
    /// The wait after a token was obtained at `now`.
    pub fn after_success(&self, now: SystemTime, expires_at: Option<SystemTime>) -> Duration {
        let wait = match expires_at {
            None => self.unknown_expiry,
            Some(exp) => match exp.duration_since(now) {
                Ok(left) => left / 2,
                Err(_) => self.min_interval, // already expired: the server's word is useless
            },
        };
        wait.clamp(self.min_interval, self.max_interval)
    }

    /// The wait after `failures` failures in a row (1 for the first), with ±20% jitter.
    pub fn after_failure(&self, failures: u32) -> Duration {
        let exp = failures.saturating_sub(1).min(20);
        let base = self
            .backoff_base
            .saturating_mul(1u32 << exp)
            .min(self.backoff_max);
        let jitter = 0.8 + 0.4 * fastrand::f64();
        base.mul_f64(jitter).max(Duration::from_secs(1))
    }
}

/// What happened at one renewal, for the caller to record.
#[derive(Debug)]
pub enum Renewal<'a> {
    /// A new token.
    Renewed(&'a Token),
    /// The attempt failed; the old token stays.
    Failed(&'a EcrError),
}

/// Renews a token until cancelled: waits `first`, then fetches, hands the result to
/// `apply`, and waits as [`Schedule`] says. Returns when `cancel` fires.
pub async fn run<C, F, Fut, A>(
    clock: &C,
    schedule: &Schedule,
    cancel: &CancellationToken,
    first: Duration,
    mut fetch: F,
    mut apply: A,
) where
    C: Clock + ?Sized,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Token, EcrError>>,
    A: FnMut(Renewal<'_>),
{
    let mut wait = first;
    let mut failures = 0u32;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = clock.sleep(wait) => {}
        }
        let result = tokio::select! {
            _ = cancel.cancelled() => return,
            r = fetch() => r,
        };
        match result {
            Ok(token) => {
                failures = 0;
                wait = schedule.after_success(clock.now(), token.expires_at);
                apply(Renewal::Renewed(&token));
            }
            Err(err) => {
                failures += 1;
                wait = schedule.after_failure(failures);
                apply(Renewal::Failed(&err));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: u64 = 3600;

    #[test]
    fn half_the_lifetime_within_bounds() {
        let s = Schedule::default();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let at = |secs| Some(now + Duration::from_secs(secs));
        assert_eq!(s.after_success(now, at(12 * H)), Duration::from_secs(6 * H));
        assert_eq!(s.after_success(now, at(2 * H)), Duration::from_secs(H));
        assert_eq!(
            s.after_success(now, at(10)),
            s.min_interval,
            "never sooner than the minimum"
        );
        assert_eq!(
            s.after_success(now, at(10 * 365 * 24 * H)),
            s.max_interval,
            "absurd expiry is capped"
        );
        assert_eq!(s.after_success(now, None), s.unknown_expiry);
        let past = Some(now - Duration::from_secs(1000 * H));
        assert_eq!(
            s.after_success(now, past),
            s.min_interval,
            "a past expiry does not spin"
        );
    }

    #[test]
    fn failures_back_off_with_jitter_up_to_a_cap() {
        let s = Schedule::default();
        for _ in 0..100 {
            let first = s.after_failure(1);
            assert!(first >= s.backoff_base.mul_f64(0.8) && first <= s.backoff_base.mul_f64(1.2));
            let third = s.after_failure(3);
            assert!(third >= (s.backoff_base * 4).mul_f64(0.8));
            assert!(s.after_failure(1000) <= s.backoff_max.mul_f64(1.2));
        }
    }
}
