//! Authentication of writes: either trust `X-User-Id` (and `X-User-Roles`) as the gateway
//! sets them, or verify a bearer JWT (HS256, RS256 or ES256) whose `sub` is the user id and
//! whose roles claim lists the caller's roles. The service knows two roles: `moderator` may
//! remove anyone's message, and `service` marks another service's token; by default neither
//! is rate limited (`RATE_LIMIT_EXEMPT_ROLES`).

use http::HeaderMap;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use messages_core::UserId;
use secrecy::ExposeSecret;
use serde::Deserialize;

use crate::config::AuthSettings;
use crate::error::ApiError;

/// Who may write, decided once per request.
pub enum Auth {
    /// `X-User-Id` is the user.
    TrustGateway,
    /// A verified token's `sub` is the user; `X-User-Id` is ignored.
    Jwt {
        /// The verification key.
        key: Box<DecodingKey>,
        /// Algorithm, expiry, issuer and audience checks.
        validation: Box<Validation>,
        /// The claim that lists the roles.
        roles_claim: String,
    },
}

pub use crate::roles::{MODERATOR, SERVICE};

/// Who a request acts as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The user.
    pub user: UserId,
    /// Whether the caller holds the `moderator` role.
    pub moderator: bool,
    /// Whether the caller holds the `service` role.
    pub service: bool,
}

impl Caller {
    /// A caller with the roles among `roles`.
    fn with_roles<'a>(user: UserId, roles: impl Iterator<Item = &'a str>) -> Self {
        let mut caller = Caller {
            user,
            moderator: false,
            service: false,
        };
        for role in roles {
            match role.trim() {
                MODERATOR => caller.moderator = true,
                SERVICE => caller.service = true,
                _ => {}
            }
        }
        caller
    }
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    #[serde(flatten)]
    rest: serde_json::Map<String, serde_json::Value>,
}

/// The roles a roles claim lists: a list of strings, or one string of roles separated by
/// spaces or commas (as OAuth scopes are).
fn claimed_roles(roles: Option<&serde_json::Value>) -> Vec<&str> {
    match roles {
        Some(serde_json::Value::Array(list)) => {
            list.iter().filter_map(serde_json::Value::as_str).collect()
        }
        Some(serde_json::Value::String(list)) => list
            .split(|c: char| c == ',' || c.is_whitespace())
            .collect(),
        _ => Vec::new(),
    }
}

impl Auth {
    /// Builds the verifier; the settings were validated when read.
    pub fn new(settings: &AuthSettings) -> anyhow::Result<Self> {
        let (key, algorithms, issuer, audience, roles_claim) = match settings {
            AuthSettings::TrustGateway => return Ok(Auth::TrustGateway),
            AuthSettings::Hs256 {
                secret,
                issuer,
                audience,
                roles_claim,
            } => (
                DecodingKey::from_secret(secret.expose_secret().as_bytes()),
                vec![Algorithm::HS256],
                issuer,
                audience,
                roles_claim,
            ),
            AuthSettings::PublicKey {
                pem,
                issuer,
                audience,
                roles_claim,
            } => match DecodingKey::from_rsa_pem(pem.as_bytes()) {
                Ok(key) => (key, vec![Algorithm::RS256], issuer, audience, roles_claim),
                Err(_) => (
                    DecodingKey::from_ec_pem(pem.as_bytes())?,
                    vec![Algorithm::ES256],
                    issuer,
                    audience,
                    roles_claim,
                ),
            },
        };
        let mut validation = Validation::new(algorithms[0]);
        validation.algorithms = algorithms;
        validation.leeway = 30;
        validation.set_required_spec_claims(&["exp", "sub"]);
        if let Some(issuer) = issuer {
            validation.set_issuer(&[issuer]);
        }
        match audience {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }
        Ok(Auth::Jwt {
            key: Box::new(key),
            validation: Box::new(validation),
            roles_claim: roles_claim.clone(),
        })
    }

    /// The user a write acts as.
    pub fn user(&self, headers: &HeaderMap) -> Result<UserId, ApiError> {
        self.caller(headers).map(|caller| caller.user)
    }

    /// The user a request acts as, and their roles.
    pub fn caller(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        match self {
            Auth::TrustGateway => Ok(Caller::with_roles(
                user_from_header(headers)?,
                headers
                    .get_all("x-user-roles")
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .flat_map(|v| v.split(',')),
            )),
            Auth::Jwt {
                key,
                validation,
                roles_claim,
            } => {
                let token = headers
                    .get(http::header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| {
                        v.strip_prefix("Bearer ")
                            .or_else(|| v.strip_prefix("bearer "))
                    })
                    .ok_or_else(|| ApiError::unauthorized("a bearer token is required"))?;
                let data = jsonwebtoken::decode::<Claims>(token.trim(), key, validation)
                    .map_err(|e| ApiError::unauthorized(format!("invalid token: {e}")))?;
                let user = UserId::parse(&data.claims.sub).map_err(|_| {
                    ApiError::unauthorized("the token's sub is not a user id (UUID)")
                })?;
                Ok(Caller::with_roles(
                    user,
                    claimed_roles(data.claims.rest.get(roles_claim.as_str())).into_iter(),
                ))
            }
        }
    }
}

fn user_from_header(headers: &HeaderMap) -> Result<UserId, ApiError> {
    let raw = headers.get("x-user-id").ok_or_else(|| {
        ApiError::bad_request("missing_user_id", "the X-User-Id header is required")
    })?;
    raw.to_str()
        .ok()
        .and_then(|s| UserId::parse(s.trim()).ok())
        .ok_or_else(|| ApiError::bad_request("invalid_user_id", "X-User-Id must be a UUID"))
}
