//! `mentions` in a message's body: `{"users": [user ids], "room": bool}`, both optional. A
//! malformed one is refused with `invalid_mentions` naming the entry, so a client can point at
//! the name it got wrong.

use http::StatusCode;
use messages_core::{Limits, Mentions, UserId};
use serde_json::Value;

use crate::error::ApiError;

/// The mentions of a body's `mentions` value (`None` when the field is absent or `null`).
pub(crate) fn parse(value: Option<Value>, limits: &Limits) -> Result<Option<Mentions>, ApiError> {
    let object = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(object)) => object,
        Some(_) => return Err(refused("mentions: must be an object {users, room}")),
    };
    let mut users = Vec::new();
    let mut room = false;
    for (name, value) in object {
        match (name.as_str(), value) {
            ("users", Value::Array(entries)) => {
                users.reserve(entries.len().min(limits.max_mentions + 1));
                for (i, entry) in entries.into_iter().enumerate() {
                    let user = entry
                        .as_str()
                        .and_then(|text| UserId::parse(text).ok())
                        .ok_or_else(|| {
                            refused(format!("mentions.users[{i}]: {entry} is not a user id"))
                        })?;
                    users.push(user);
                }
            }
            ("users", Value::Null) => {}
            ("users", _) => return Err(refused("mentions.users: must be a list of user ids")),
            ("room", Value::Bool(flag)) => room = flag,
            ("room", _) => return Err(refused("mentions.room: must be true or false")),
            (other, _) => {
                return Err(refused(format!(
                    "mentions.{other}: unknown; give users and room"
                )));
            }
        }
    }
    Mentions::new(users, room, limits.max_mentions)
        .map(Some)
        .map_err(|error| refused(error.to_string()))
}

fn refused(message: impl Into<String>) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_mentions",
        message,
    )
}
