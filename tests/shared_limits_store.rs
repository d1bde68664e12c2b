//! The rate-limit windows and lockouts that instances share on PostgreSQL
//! (`store::limits`): the same rules as the in-memory limiter and lockout, atomic under
//! concurrency, and swept once expired. Time is moved by passing instants.
#![cfg_attr(not(pg_tests), allow(dead_code, unused_imports))]

use crate::common;

use std::time::Duration;

use chrono::{DateTime, Utc};
use common::{Engine, TestDatabase};
use mailroom::store::limits::{
    Counted, FailureRule, SharedLimits, Standing, WindowRule, open_shared_limits,
};

async fn open() -> (SharedLimits, TestDatabase) {
    let database = TestDatabase::new(Engine::Postgres).await;
    let store = mailroom::store::open(&database.url).await.unwrap();
    store.migrate().await.expect("migrations apply");
    store.close().await;
    let limits = open_shared_limits(&database.url)
        .await
        .unwrap()
        .expect("PostgreSQL shares its limits");
    (limits, database)
}

fn rules(text: &[(u64, u32)]) -> Vec<WindowRule> {
    text.iter()
        .map(|&(secs, limit)| WindowRule {
            length: Duration::from_secs(secs),
            limit,
        })
        .collect()
}

/// Now, to the microsecond the store keeps.
fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap()
}

fn at(start: DateTime<Utc>, millis: i64) -> DateTime<Utc> {
    start + chrono::Duration::milliseconds(millis)
}

fn counts(counted: &Counted) -> Vec<u32> {
    counted.windows.iter().map(|w| w.count).collect()
}

const LOCKOUT: FailureRule = FailureRule {
    max_failures: 3,
    window: Duration::from_secs(300),
    lockout: Duration::from_secs(900),
};

macro_rules! pg_test {
    ($name:ident, $body:block) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        #[cfg_attr(
            not(pg_tests),
            ignore = "set MAILROOM_TEST_POSTGRES_URL to run the PostgreSQL tests"
        )]
        async fn $name() $body
    };
}

pg_test!(a_full_window_refuses_until_it_starts_again, {
    let (limits, _db) = open().await;
    let start = now();
    let minute = rules(&[(60, 3)]);
    for expected in 1..=3 {
        let counted = limits
            .count_request("list", "192.0.2.1", &minute, start)
            .await
            .unwrap();
        assert!(counted.counted);
        assert_eq!(counts(&counted), [expected]);
        assert_eq!(
            counted.windows[0].start.timestamp_micros(),
            start.timestamp_micros()
        );
    }
    let refused = limits
        .count_request("list", "192.0.2.1", &minute, at(start, 20_000))
        .await
        .unwrap();
    assert!(!refused.counted);
    assert_eq!(counts(&refused), [3]);
    // Another client, another policy: rows of their own.
    assert!(
        limits
            .count_request("list", "192.0.2.2", &minute, start)
            .await
            .unwrap()
            .counted
    );
    assert!(
        limits
            .count_request("get", "192.0.2.1", &minute, start)
            .await
            .unwrap()
            .counted
    );
    let later = at(start, 60_000);
    let again = limits
        .count_request("list", "192.0.2.1", &minute, later)
        .await
        .unwrap();
    assert!(again.counted);
    assert_eq!(counts(&again), [1]);
    assert_eq!(
        again.windows[0].start.timestamp_micros(),
        later.timestamp_micros()
    );
});

pg_test!(a_refused_request_is_counted_in_no_window, {
    let (limits, _db) = open().await;
    let start = now();
    let two = rules(&[(1, 2), (60, 3)]);
    let count = |ms| limits.count_request("global", "198.51.100.1", &two, at(start, ms));
    assert!(count(0).await.unwrap().counted);
    assert!(count(1).await.unwrap().counted);
    let refused = count(2).await.unwrap();
    assert!(!refused.counted);
    assert_eq!(counts(&refused), [2, 2]);
    // The second starts again; the minute has one request left, not zero.
    let next = count(1000).await.unwrap();
    assert!(next.counted);
    assert_eq!(counts(&next), [1, 3]);
    let refused = count(1001).await.unwrap();
    assert!(!refused.counted);
    assert_eq!(counts(&refused), [1, 3]);
});

pg_test!(changed_windows_start_afresh_where_they_differ, {
    let (limits, _db) = open().await;
    let start = now();
    let client = "203.0.113.7";
    limits
        .count_request("docs", client, &rules(&[(60, 5)]), start)
        .await
        .unwrap();
    let more = rules(&[(60, 5), (3600, 10)]);
    let counted = limits
        .count_request("docs", client, &more, at(start, 1))
        .await
        .unwrap();
    assert_eq!(counts(&counted), [2, 1]);
    let fewer = rules(&[(60, 5)]);
    let counted = limits
        .count_request("docs", client, &fewer, at(start, 2))
        .await
        .unwrap();
    assert_eq!(counts(&counted), [3]);
});

pg_test!(concurrent_requests_never_pass_more_than_the_limit, {
    let (limits, _db) = open().await;
    let limits = std::sync::Arc::new(limits);
    let now = now();
    let tasks = (0..60).map(|_| {
        let limits = limits.clone();
        tokio::spawn(async move {
            let minute = rules(&[(60, 25)]);
            limits
                .count_request("webhook", "192.0.2.9", &minute, now)
                .await
                .unwrap()
                .counted
        })
    });
    let outcomes = futures::future::join_all(tasks).await;
    let passed = outcomes
        .into_iter()
        .filter(|o| *o.as_ref().unwrap())
        .count();
    assert_eq!(passed, 25);
});

pg_test!(failures_within_the_window_lock_out_once, {
    let (limits, _db) = open().await;
    let start = now();
    let client = "203.0.113.7";
    assert_eq!(
        limits.standing("api", client).await.unwrap(),
        Standing::Clean
    );
    let fail = |secs: i64| limits.record_failure("api", client, LOCKOUT, at(start, secs * 1000));
    assert!(!fail(0).await.unwrap());
    assert!(!fail(100).await.unwrap());
    // The first failure is older than the window by now: still two.
    assert!(!fail(350).await.unwrap());
    assert!(fail(399).await.unwrap());
    let until = at(start, 1_299_000);
    assert_eq!(
        limits.standing("api", client).await.unwrap(),
        Standing::Recorded {
            locked_until: Some(until)
        }
    );
    // Failing while locked out neither extends the lockout nor locks again.
    assert!(!fail(400).await.unwrap());
    assert_eq!(
        limits.standing("api", client).await.unwrap(),
        Standing::Recorded {
            locked_until: Some(until)
        }
    );
    // The webmail's logins count apart.
    assert_eq!(
        limits.standing("webmail", client).await.unwrap(),
        Standing::Clean
    );
});

pg_test!(a_success_clears_failures_but_not_a_running_lockout, {
    let (limits, _db) = open().await;
    let now = now();
    for _ in 0..2 {
        limits
            .record_failure("api", "192.0.2.1", LOCKOUT, now)
            .await
            .unwrap();
    }
    limits
        .clear_failures("api", "192.0.2.1", now)
        .await
        .unwrap();
    assert_eq!(
        limits.standing("api", "192.0.2.1").await.unwrap(),
        Standing::Clean
    );
    for _ in 0..3 {
        limits
            .record_failure("api", "192.0.2.2", LOCKOUT, now)
            .await
            .unwrap();
    }
    limits
        .clear_failures("api", "192.0.2.2", now)
        .await
        .unwrap();
    assert!(matches!(
        limits.standing("api", "192.0.2.2").await.unwrap(),
        Standing::Recorded {
            locked_until: Some(_)
        }
    ));
});

pg_test!(concurrent_failures_lock_out_exactly_once, {
    let (limits, _db) = open().await;
    let limits = std::sync::Arc::new(limits);
    let now = now();
    let tasks = (0..30).map(|_| {
        let limits = limits.clone();
        tokio::spawn(async move {
            limits
                .record_failure("api", "192.0.2.5", LOCKOUT, now)
                .await
                .unwrap()
        })
    });
    let outcomes = futures::future::join_all(tasks).await;
    let locked = outcomes
        .into_iter()
        .filter(|o| *o.as_ref().unwrap())
        .count();
    assert_eq!(locked, 1);
});

pg_test!(one_failure_may_be_enough, {
    let (limits, _db) = open().await;
    let rule = FailureRule {
        max_failures: 1,
        ..LOCKOUT
    };
    assert!(
        limits
            .record_failure("webmail", "192.0.2.1", rule, now())
            .await
            .unwrap()
    );
});

pg_test!(the_sweep_drops_only_what_has_expired, {
    let (limits, _db) = open().await;
    let start = now();
    limits
        .count_request("docs", "192.0.2.1", &rules(&[(1, 5)]), start)
        .await
        .unwrap();
    limits
        .count_request("global", "192.0.2.1", &rules(&[(1, 5), (3600, 5)]), start)
        .await
        .unwrap();
    limits
        .record_failure("api", "192.0.2.1", LOCKOUT, start)
        .await
        .unwrap();
    for _ in 0..3 {
        limits
            .record_failure("api", "192.0.2.2", LOCKOUT, start)
            .await
            .unwrap();
    }
    assert_eq!(limits.rows().await.unwrap(), (2, 2));
    assert_eq!(limits.sweep(at(start, 999), 100).await.unwrap(), 0);
    // The second ended: `docs` goes, `global` keeps its hour.
    assert_eq!(limits.sweep(at(start, 1000), 100).await.unwrap(), 1);
    // Failures end with their window, a lockout with itself.
    assert_eq!(limits.sweep(at(start, 300_000), 100).await.unwrap(), 1);
    assert_eq!(limits.rows().await.unwrap(), (1, 1));
    assert_eq!(limits.sweep(at(start, 3_600_000), 100).await.unwrap(), 2);
    assert_eq!(limits.rows().await.unwrap(), (0, 0));
});

pg_test!(the_sweep_keeps_the_latest_clients_within_the_cap, {
    let (limits, _db) = open().await;
    let start = now();
    // Five clients of one policy, seen a second apart, and one of another policy; and
    // three clients' failures.
    for second in 0..5 {
        let client = format!("192.0.2.{second}");
        let at = at(start, second * 1000);
        let rule = rules(&[(60, 5)]);
        limits
            .count_request("docs", &client, &rule, at)
            .await
            .unwrap();
    }
    let rule = rules(&[(60, 5)]);
    limits
        .count_request("list", "192.0.2.9", &rule, start)
        .await
        .unwrap();
    for second in 0..3 {
        let client = format!("198.51.100.{second}");
        let at = at(start, second * 1000);
        limits
            .record_failure("api", &client, LOCKOUT, at)
            .await
            .unwrap();
    }
    assert_eq!(limits.rows().await.unwrap(), (6, 3));
    // Nothing has expired; the cap of 2 per policy and scope drops the oldest clients.
    assert_eq!(limits.sweep(start, 2).await.unwrap(), 3 + 1);
    assert_eq!(limits.rows().await.unwrap(), (3, 2));
    let kept = rules(&[(60, 5)]);
    let later = at(start, 5000);
    let newest = limits
        .count_request("docs", "192.0.2.4", &kept, later)
        .await;
    assert_eq!(
        newest.unwrap().windows[0].count,
        2,
        "the newest client is remembered"
    );
    let oldest = limits
        .count_request("docs", "192.0.2.0", &kept, later)
        .await;
    assert_eq!(
        oldest.unwrap().windows[0].count,
        1,
        "the oldest was forgotten"
    );
});

#[tokio::test]
async fn sqlite_keeps_its_limits_in_memory() {
    let database = TestDatabase::new(Engine::Sqlite).await;
    assert!(open_shared_limits(&database.url).await.unwrap().is_none());
}
