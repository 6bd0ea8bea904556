//! The rate limiter contract: what every `RateLimiter` must do, written once as named cases.
//! [`limit_contract!`](crate::limit_contract) stamps out one test per case and backend. The
//! subject makes limiters of a given rate, each with buckets of its own.

use std::sync::Arc;
use std::time::Duration;

use crate::limit::{Rate, RateLimiter};
use crate::message::UserId;

/// Makes a limiter of a rate, sharing no bucket with any other it made.
pub type Subject = Arc<dyn Fn(Rate) -> Arc<dyn RateLimiter> + Send + Sync>;

/// Stamps out one `#[tokio::test]` per case of the limiter contract and per backend, in a
/// module `limit_contract::<backend>`. Each backend's expression gives a future of
/// `Option<Subject>`; `None` skips.
#[macro_export]
macro_rules! limit_contract {
    ($($backend:ident => $subject:expr),+ $(,)?) => {
        mod limit_contract {
            #[allow(unused_imports)]
            use super::*;
            #[allow(unused_imports)]
            use $crate::testing::limit::*;
            $crate::every_backend!([
                a_full_bucket_gives_its_burst_then_refuses,
                a_refused_write_costs_nothing_and_its_wait_is_honest,
                users_have_buckets_of_their_own,
                a_token_given_back_can_be_taken_again,
                a_bucket_refills_at_its_rate_up_to_the_burst,
                the_limiter_answers_a_ping,
            ] on $($backend => $subject),+);
        }
    };
}

fn user() -> UserId {
    UserId::from_uuid(uuid::Uuid::new_v4())
}

fn rate(per_second: f64, burst: u32) -> Rate {
    Rate::new(per_second, burst).unwrap()
}

/// The burst goes through with the count of what is left, then a write is refused with a
/// wait of at most one token's time.
pub async fn a_full_bucket_gives_its_burst_then_refuses(make: &Subject) {
    let limiter = make(rate(1.0, 5));
    assert_eq!(limiter.rate(), rate(1.0, 5));
    let u = user();
    for remaining in (0..5).rev() {
        let d = limiter.take(u).await.unwrap();
        assert!(d.allowed, "{d:?}");
        assert_eq!((d.limit, d.remaining), (5, remaining), "{d:?}");
        assert_eq!(d.retry_after, Duration::ZERO);
        assert!(d.reset_after <= Duration::from_secs(5), "{d:?}");
    }
    let refused = limiter.take(u).await.unwrap();
    assert!(!refused.allowed, "{refused:?}");
    assert_eq!((refused.limit, refused.remaining), (5, 0));
    assert!(
        refused.retry_after > Duration::from_millis(500)
            && refused.retry_after <= Duration::from_secs(1),
        "{refused:?}"
    );
    assert!(refused.reset_after > Duration::from_secs(4), "{refused:?}");
}

/// Refusals take nothing: after the wait the first refusal named, a write goes through
/// however many were refused meanwhile.
pub async fn a_refused_write_costs_nothing_and_its_wait_is_honest(make: &Subject) {
    let limiter = make(rate(20.0, 2));
    let u = user();
    assert!(limiter.take(u).await.unwrap().allowed);
    assert!(limiter.take(u).await.unwrap().allowed);
    let first = limiter.take(u).await.unwrap();
    assert!(!first.allowed);
    assert!(first.retry_after <= Duration::from_millis(50), "{first:?}");
    for _ in 0..10 {
        assert!(!limiter.take(u).await.unwrap().allowed);
    }
    tokio::time::sleep(first.retry_after + Duration::from_millis(5)).await;
    let after = limiter.take(u).await.unwrap();
    assert!(after.allowed, "the wait said was not enough: {after:?}");
}

/// One user's empty bucket refuses nobody else.
pub async fn users_have_buckets_of_their_own(make: &Subject) {
    let limiter = make(rate(1.0, 1));
    let (a, b) = (user(), user());
    assert!(limiter.take(a).await.unwrap().allowed);
    assert!(!limiter.take(a).await.unwrap().allowed);
    let other = limiter.take(b).await.unwrap();
    assert!(other.allowed);
    assert_eq!(other.remaining, 0);
}

/// A token given back (a write that did not count) is there for the next write; giving back
/// to a full bucket adds nothing.
pub async fn a_token_given_back_can_be_taken_again(make: &Subject) {
    let limiter = make(rate(1.0, 2));
    let u = user();
    assert!(limiter.take(u).await.unwrap().allowed);
    assert!(limiter.take(u).await.unwrap().allowed);
    assert!(!limiter.take(u).await.unwrap().allowed);
    limiter.give_back(u).await.unwrap();
    assert!(limiter.take(u).await.unwrap().allowed);
    assert!(!limiter.take(u).await.unwrap().allowed);

    let fresh = user();
    limiter.give_back(fresh).await.unwrap();
    limiter.give_back(fresh).await.unwrap();
    assert!(limiter.take(fresh).await.unwrap().allowed);
    assert!(limiter.take(fresh).await.unwrap().allowed);
    assert!(
        !limiter.take(fresh).await.unwrap().allowed,
        "a full bucket holds its burst, no more"
    );
}

/// An idle bucket fills at the rate, and never past the burst.
pub async fn a_bucket_refills_at_its_rate_up_to_the_burst(make: &Subject) {
    // A token each 100 ms: the takes that follow each other must come within it, which a
    // busy machine running every test at once still does.
    let limiter = make(rate(10.0, 2));
    let u = user();
    assert!(limiter.take(u).await.unwrap().allowed);
    assert!(limiter.take(u).await.unwrap().allowed);
    assert!(!limiter.take(u).await.unwrap().allowed);
    // Ten tokens' time: the bucket is full (two), not twelve.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let d = limiter.take(u).await.unwrap();
    assert!(d.allowed);
    assert_eq!(d.remaining, 1, "{d:?}");
    assert!(limiter.take(u).await.unwrap().allowed);
    assert!(!limiter.take(u).await.unwrap().allowed);
}

/// The limiter answers a ping.
pub async fn the_limiter_answers_a_ping(make: &Subject) {
    make(rate(1.0, 1)).ping().await.unwrap();
}
