//! Typed reads of environment variables that collect problems instead of failing fast.

use std::fmt::Display;
use std::str::FromStr;

use super::ConfigError;

pub struct Env<F> {
    lookup: F,
    problems: Vec<String>,
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    pub fn new(lookup: F) -> Self {
        Self {
            lookup,
            problems: Vec::new(),
        }
    }

    /// The trimmed value; unset and blank are the same.
    pub fn string(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
            .map(|value| value.trim().to_owned())
            .filter(|value| !value.is_empty())
    }

    /// A comma-separated list, blanks dropped.
    pub fn list(&self, name: &str) -> Vec<String> {
        self.string(name)
            .map(|value| {
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|item| !item.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The parsed value, or `default` when unset; a bad value is recorded as a problem.
    pub fn parse<T>(&mut self, name: &str, default: T) -> T
    where
        T: FromStr,
        T::Err: Display,
    {
        self.parse_with(name, default, |text| {
            text.parse::<T>().map_err(|e| e.to_string())
        })
    }

    /// Like `parse`, with a parser of the caller's.
    pub fn parse_with<T>(
        &mut self,
        name: &str,
        default: T,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> T {
        match self.string(name) {
            None => default,
            Some(text) => parse(&text).unwrap_or_else(|error| {
                self.problem(name, &format!("cannot use {text:?}: {error}"));
                default
            }),
        }
    }

    pub fn problem(&mut self, name: &str, message: &str) {
        self.problems.push(format!("{name}: {message}"));
    }

    pub fn finish(self) -> Result<(), ConfigError> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError(self.problems))
        }
    }
}
