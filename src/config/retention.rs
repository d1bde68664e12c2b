//! Reading the retention policy (`RETENTION_DAYS`, `RETENTION_MAX_EMAILS`,
//! `TRASH_RETENTION_DAYS`, `EVENTS_RETENTION_DAYS`); the policy type is the store's.

use chrono::Duration;

use super::Env;
use crate::store::retention::RetentionPolicy;

impl RetentionPolicy {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &mut Env<F>) -> Self {
        let defaults = Self::default();
        let days = |env: &mut Env<F>, name: &str, default: Option<Duration>| {
            env.parse_with(name, default, |text| {
                optional_count(text, MAX_DAYS).map(|days| days.map(|d| Duration::days(d as i64)))
            })
        };
        let max_age = days(env, "RETENTION_DAYS", defaults.max_age);
        let trash_age = days(env, "TRASH_RETENTION_DAYS", defaults.trash_age);
        let max_emails = env.parse_with("RETENTION_MAX_EMAILS", None, |text| {
            optional_count(text, i64::MAX as u64)
        });
        let events_age = days(env, "EVENTS_RETENTION_DAYS", Some(defaults.events_age))
            .unwrap_or_else(|| {
                env.problem("EVENTS_RETENTION_DAYS", "must be at least 1 day");
                defaults.events_age
            });
        Self {
            max_age,
            max_emails,
            trash_age,
            events_age,
            every: defaults.every,
        }
    }
}

/// A hundred years: longer periods would overflow date arithmetic for no use.
const MAX_DAYS: u64 = 36_500;

/// A whole number up to `max`, or `off` / `0` for none.
fn optional_count(text: &str, max: u64) -> Result<Option<u64>, String> {
    if text.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    match text.parse::<u64>() {
        Ok(0) => Ok(None),
        Ok(n) if n <= max => Ok(Some(n)),
        _ => Err(format!("expected a whole number up to {max}, or off")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(vars: &[(&str, &str)]) -> (RetentionPolicy, Result<(), super::super::ConfigError>) {
        let mut env = Env::new(|name: &str| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        });
        let policy = RetentionPolicy::from_env(&mut env);
        (policy, env.finish())
    }

    #[test]
    fn trash_is_kept_thirty_days_and_everything_else_forever_by_default() {
        let (policy, result) = policy(&[]);
        assert!(result.is_ok());
        assert_eq!(policy, RetentionPolicy::default());
        assert_eq!(policy.trash_age, Some(Duration::days(30)));
        assert_eq!((policy.max_age, policy.max_emails), (None, None));
    }

    #[test]
    fn each_rule_is_set_or_turned_off() {
        let (policy, result) = policy(&[
            ("RETENTION_DAYS", "365"),
            ("RETENTION_MAX_EMAILS", "100000"),
            ("TRASH_RETENTION_DAYS", "off"),
            ("EVENTS_RETENTION_DAYS", "2"),
        ]);
        assert!(result.is_ok());
        assert_eq!(policy.max_age, Some(Duration::days(365)));
        assert_eq!(policy.max_emails, Some(100_000));
        assert_eq!(policy.trash_age, None);
        assert_eq!(policy.events_age, Duration::days(2));
    }

    #[test]
    fn nonsense_and_a_log_without_history_are_refused() {
        for (name, value) in [
            ("RETENTION_DAYS", "-1"),
            ("TRASH_RETENTION_DAYS", "a month"),
            ("EVENTS_RETENTION_DAYS", "0"),
        ] {
            let (_, result) = policy(&[(name, value)]);
            let problems = result.unwrap_err().0.join(" ");
            assert!(problems.contains(name), "{name}={value}: {problems}");
        }
    }
}
