//! The roles the service knows, by name: read from a token's roles claim or `X-User-Roles`
//! (`auth`), and named by `RATE_LIMIT_EXEMPT_ROLES` (`config`).

/// The role that may remove anyone's message.
pub const MODERATOR: &str = "moderator";

/// The role of another service's token.
pub const SERVICE: &str = "service";
