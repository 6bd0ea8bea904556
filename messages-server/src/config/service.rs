//! The service's settings (the core's `ServiceConfig`): input limits, reactions, the unread
//! cap, and how many messages the cache keeps per thread.

use messages_core::{PageSize, Participants, ServiceConfig, UnreadMax};

use super::env::{ConfigError, Env};

/// Reads `MAX_CONTENT_CHARS`, `MAX_PATHS`, `MAX_PATH_CHARS`, `MAX_MENTIONS`, `REACTION_MAX_EMOJI`,
/// `REACTION_USERS_SHOWN`, `UNREAD_MAX`, `REPLY_PARTICIPANTS` and `CACHE_MAX_ITEMS`, each defaulting to the core's
/// [`ServiceConfig::default`].
pub(super) fn from_env<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
) -> Result<ServiceConfig, ConfigError> {
    let mut service = ServiceConfig::default();
    let limits = &mut service.limits;
    limits.max_content_chars =
        env.count("MAX_CONTENT_CHARS", limits.max_content_chars, 1, 1_000_000)?;
    limits.max_paths = env.count("MAX_PATHS", limits.max_paths, 0, 1_000)?;
    limits.max_path_chars = env.count("MAX_PATH_CHARS", limits.max_path_chars, 1, 65_536)?;
    limits.max_mentions = env.count("MAX_MENTIONS", limits.max_mentions, 0, 10_000)?;
    let reactions = &mut service.reactions;
    reactions.max_emoji = env.count("REACTION_MAX_EMOJI", reactions.max_emoji, 1, 1_000)?;
    reactions.users_shown = env.count("REACTION_USERS_SHOWN", reactions.users_shown, 0, 100)?;
    let unread_max = env.count("UNREAD_MAX", service.unread_max.get(), 1, UnreadMax::LIMIT)?;
    service.unread_max = UnreadMax::new(unread_max).map_err(|e| ConfigError {
        var: "UNREAD_MAX",
        reason: e.to_string(),
    })?;
    let participants = env.count(
        "REPLY_PARTICIPANTS",
        service.participants.get(),
        1,
        Participants::MAX,
    )?;
    service.participants = Participants::new(participants).map_err(|e| ConfigError {
        var: "REPLY_PARTICIPANTS",
        reason: e.to_string(),
    })?;
    let window = env.range(
        "CACHE_MAX_ITEMS",
        service.window.get() as u64,
        1,
        u64::from(PageSize::MAX),
    )?;
    service.window = PageSize::new(window as u32).map_err(|e| ConfigError {
        var: "CACHE_MAX_ITEMS",
        reason: e.to_string(),
    })?;
    Ok(service)
}
