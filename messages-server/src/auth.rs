//! Authentication of writes: either trust `X-User-Id` as the gateway sets it, or verify a
//! bearer JWT (HS256, RS256 or ES256) whose `sub` is the user id.

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
    },
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
}

impl Auth {
    /// Builds the verifier; the settings were validated when read.
    pub fn new(settings: &AuthSettings) -> anyhow::Result<Self> {
        let (key, algorithms, issuer, audience) = match settings {
            AuthSettings::TrustGateway => return Ok(Auth::TrustGateway),
            AuthSettings::Hs256 {
                secret,
                issuer,
                audience,
            } => (
                DecodingKey::from_secret(secret.expose_secret().as_bytes()),
                vec![Algorithm::HS256],
                issuer,
                audience,
            ),
            AuthSettings::PublicKey {
                pem,
                issuer,
                audience,
            } => match DecodingKey::from_rsa_pem(pem.as_bytes()) {
                Ok(key) => (key, vec![Algorithm::RS256], issuer, audience),
                Err(_) => (
                    DecodingKey::from_ec_pem(pem.as_bytes())?,
                    vec![Algorithm::ES256],
                    issuer,
                    audience,
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
        })
    }

    /// The user a write acts as.
    pub fn user(&self, headers: &HeaderMap) -> Result<UserId, ApiError> {
        match self {
            Auth::TrustGateway => user_from_header(headers),
            Auth::Jwt { key, validation } => {
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
                UserId::parse(&data.claims.sub)
                    .map_err(|_| ApiError::unauthorized("the token's sub is not a user id (UUID)"))
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
