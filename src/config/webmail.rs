//! Settings of the webmail's listener and sessions (DESIGN §8).

use std::time::Duration;

use super::Env;

/// The default `WEBMAIL_PORT`, the old webmail's.
pub const DEFAULT_WEBMAIL_PORT: u16 = 26000;

/// A session ends this long after login, however active (not configurable).
pub const SESSION_ABSOLUTE: Duration = Duration::from_secs(7 * 86_400);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebmailSettings {
    /// `WEBMAIL_PORT` on `HOST`; `None` (`off`) disables the webmail.
    pub port: Option<u16>,
    /// `WEBMAIL_SESSION_IDLE`: a session unused this long ends (default 8 h).
    pub session_idle: Duration,
    /// How long a session may last from its login.
    pub session_absolute: Duration,
}

impl WebmailSettings {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &mut Env<F>) -> Self {
        let port = env.parse_with("WEBMAIL_PORT", Some(DEFAULT_WEBMAIL_PORT), parse_port);
        let session_idle = env.parse_with(
            "WEBMAIL_SESSION_IDLE",
            Duration::from_secs(8 * 3600),
            parse_duration,
        );
        if session_idle.is_zero() || session_idle > SESSION_ABSOLUTE {
            env.problem("WEBMAIL_SESSION_IDLE", "must be between 1s and 7d");
        }
        Self {
            port,
            session_idle,
            session_absolute: SESSION_ABSOLUTE,
        }
    }
}

/// A port, or `off`.
fn parse_port(text: &str) -> Result<Option<u16>, String> {
    if text.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|_| "expected a port or `off`".into())
}

/// `90s`, `30m`, `8h`, `2d`, or bare seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.replace(' ', "").to_ascii_lowercase();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| "expected a duration such as 8h, 30m or 3600s")?;
    let seconds_per = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("unknown unit {unit:?}: use s, m, h or d")),
    };
    number
        .checked_mul(seconds_per)
        .map(Duration::from_secs)
        .ok_or_else(|| "too long".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_a_unit_or_seconds() {
        assert_eq!(parse_duration("8h"), Ok(Duration::from_secs(28_800)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2 d"), Ok(Duration::from_secs(172_800)));
        assert!(parse_duration("8 hours").is_err());
        assert!(parse_duration("h").is_err());
    }

    #[test]
    fn the_port_may_be_off() {
        assert_eq!(parse_port("off"), Ok(None));
        assert_eq!(parse_port("0"), Ok(Some(0)));
        assert!(parse_port("webmail").is_err());
    }
}
