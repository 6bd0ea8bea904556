//! `RateLimitSettings`: per-user write rate limits.

use messages_core::limit::Rate;

use super::env::{ConfigError, Env};

/// Per-user write rate limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimitSettings {
    /// Writes a second and burst of each user's bucket (`RATE_LIMIT_WRITES_PER_SECOND`,
    /// default 10, a fraction allowed; `RATE_LIMIT_BURST`, default 30); `None` when the
    /// rate is 0, which turns the limits off.
    pub rate: Option<Rate>,
    /// Whether callers with the `moderator` role are left unlimited
    /// (`RATE_LIMIT_EXEMPT_ROLES`, a comma list, default `moderator,service`; `none` limits
    /// everyone).
    pub exempt_moderators: bool,
    /// Whether callers with the `service` role are left unlimited.
    pub exempt_services: bool,
    /// Messages a user may send or edit to address the whole room (`mentions.room`), per
    /// minute, with a bucket of as many (`RATE_LIMIT_ROOM_MENTIONS_PER_MINUTE`, default 5);
    /// `None` when 0, which turns this limit off. Apart from the write limit: an `@room`
    /// reaches every reader, so it is kept rarer than writes.
    pub room_mentions: Option<Rate>,
}

impl RateLimitSettings {
    /// Default writes a second.
    pub const DEFAULT_PER_SECOND: f64 = 10.0;
    /// Default burst.
    pub const DEFAULT_BURST: u32 = 30;
    /// Default room mentions a minute.
    pub const DEFAULT_ROOM_MENTIONS_PER_MINUTE: u32 = 5;

    /// The room mentions' rate: `per_minute` a minute, as many at once.
    pub fn room_mentions_rate(per_minute: u32) -> Option<Rate> {
        (per_minute > 0)
            .then(|| Rate::new(f64::from(per_minute) / 60.0, per_minute).ok())
            .flatten()
    }

    /// No limits.
    pub const OFF: RateLimitSettings = RateLimitSettings {
        rate: None,
        exempt_moderators: true,
        exempt_services: true,
        room_mentions: None,
    };
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        RateLimitSettings {
            rate: Rate::new(Self::DEFAULT_PER_SECOND, Self::DEFAULT_BURST).ok(),
            room_mentions: Self::room_mentions_rate(Self::DEFAULT_ROOM_MENTIONS_PER_MINUTE),
            ..Self::OFF
        }
    }
}

impl RateLimitSettings {
    /// Reads `RATE_LIMIT_WRITES_PER_SECOND`, `RATE_LIMIT_BURST`, `RATE_LIMIT_EXEMPT_ROLES`,
    /// `RATE_LIMIT_ROOM_MENTIONS_PER_MINUTE`.
    pub(super) fn from_env<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
    ) -> Result<Self, ConfigError> {
        let per_second: f64 = env.parse(
            "RATE_LIMIT_WRITES_PER_SECOND",
            RateLimitSettings::DEFAULT_PER_SECOND,
            "a number of writes a second (0 turns limits off)",
        )?;
        let burst = env.range(
            "RATE_LIMIT_BURST",
            u64::from(RateLimitSettings::DEFAULT_BURST),
            1,
            u64::from(Rate::MAX_BURST),
        )? as u32;
        let rate = if per_second == 0.0 {
            None
        } else {
            Some(Rate::new(per_second, burst).map_err(|e| ConfigError {
                var: "RATE_LIMIT_WRITES_PER_SECOND",
                reason: e.to_string(),
            })?)
        };
        let room_per_minute = env.range(
            "RATE_LIMIT_ROOM_MENTIONS_PER_MINUTE",
            u64::from(RateLimitSettings::DEFAULT_ROOM_MENTIONS_PER_MINUTE),
            0,
            10_000,
        )? as u32;
        let mut settings = RateLimitSettings {
            rate,
            exempt_moderators: false,
            exempt_services: false,
            room_mentions: RateLimitSettings::room_mentions_rate(room_per_minute),
        };
        let roles = env.text(
            "RATE_LIMIT_EXEMPT_ROLES",
            &format!("{},{}", crate::roles::MODERATOR, crate::roles::SERVICE),
        );
        for role in roles.split(',').map(str::trim).filter(|r| !r.is_empty()) {
            match role {
                crate::roles::MODERATOR => settings.exempt_moderators = true,
                crate::roles::SERVICE => settings.exempt_services = true,
                "none" => {}
                other => {
                    return Err(ConfigError {
                        var: "RATE_LIMIT_EXEMPT_ROLES",
                        reason: format!(
                            "expected a comma list of moderator and service, or none; got {other:?}"
                        ),
                    });
                }
            }
        }
        Ok(settings)
    }
}
