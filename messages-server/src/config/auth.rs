//! `AuthSettings`: how writes are authenticated: the gateway's `X-User-Id`, or a verified JWT.

use secrecy::SecretString;

use super::env::{ConfigError, Env};

/// How writes are authenticated.
#[derive(Clone, Debug)]
pub enum AuthSettings {
    /// Trust `X-User-Id` as the gateway sets it (no `AUTH_JWT_*` variable set).
    TrustGateway,
    /// Require `Authorization: Bearer <jwt>` signed with HS256 and this secret
    /// (`AUTH_JWT_SECRET`).
    Hs256 {
        /// The shared secret.
        secret: SecretString,
        /// Required `iss` (`AUTH_JWT_ISSUER`), if any.
        issuer: Option<String>,
        /// Required `aud` (`AUTH_JWT_AUDIENCE`), if any.
        audience: Option<String>,
        /// The claim listing the token's roles (`AUTH_JWT_ROLES_CLAIM`, default `roles`).
        roles_claim: String,
    },
    /// Require a bearer JWT signed with RS256 or ES256 by the key whose public half is this
    /// PEM (`AUTH_JWT_PUBLIC_KEY`).
    PublicKey {
        /// The PEM text (a public key: nothing to hide).
        pem: String,
        /// Required `iss`, if any.
        issuer: Option<String>,
        /// Required `aud`, if any.
        audience: Option<String>,
        /// The claim listing the token's roles.
        roles_claim: String,
    },
}

impl AuthSettings {
    /// The claim that lists a token's roles when `AUTH_JWT_ROLES_CLAIM` is unset.
    pub const DEFAULT_ROLES_CLAIM: &str = "roles";
}

impl AuthSettings {
    /// Reads `AUTH_JWT_SECRET` or `AUTH_JWT_PUBLIC_KEY` (neither: trust the gateway), and the
    /// token's required issuer, audience and roles claim.
    pub(super) fn from_env<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
    ) -> Result<Self, ConfigError> {
        let issuer = env.get("AUTH_JWT_ISSUER");
        let audience = env.get("AUTH_JWT_AUDIENCE");
        let roles_claim = env.text("AUTH_JWT_ROLES_CLAIM", AuthSettings::DEFAULT_ROLES_CLAIM);
        let claim_name_ok = (1..=64).contains(&roles_claim.len())
            && roles_claim
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.:/".contains(&b));
        if !claim_name_ok {
            return Err(ConfigError {
                var: "AUTH_JWT_ROLES_CLAIM",
                reason: "a claim name: 1 to 64 of A-Z a-z 0-9 _ - . : /".into(),
            });
        }
        match (
            env.secret("AUTH_JWT_SECRET"),
            env.get("AUTH_JWT_PUBLIC_KEY"),
        ) {
            (Some(_), Some(_)) => Err(ConfigError {
                var: "AUTH_JWT_SECRET",
                reason: "set AUTH_JWT_SECRET or AUTH_JWT_PUBLIC_KEY, not both".into(),
            }),
            (Some(secret), None) => {
                if secret.len() < 32 {
                    return Err(ConfigError {
                        var: "AUTH_JWT_SECRET",
                        reason: "must be at least 32 bytes".into(),
                    });
                }
                Ok(AuthSettings::Hs256 {
                    secret: SecretString::from(secret),
                    issuer,
                    audience,
                    roles_claim,
                })
            }
            (None, Some(pem)) => {
                let rsa = jsonwebtoken::DecodingKey::from_rsa_pem(pem.as_bytes());
                let ec = jsonwebtoken::DecodingKey::from_ec_pem(pem.as_bytes());
                if rsa.is_err() && ec.is_err() {
                    return Err(ConfigError {
                        var: "AUTH_JWT_PUBLIC_KEY",
                        reason: "expected an RSA or EC (P-256) public key in PEM".into(),
                    });
                }
                Ok(AuthSettings::PublicKey {
                    pem,
                    issuer,
                    audience,
                    roles_claim,
                })
            }
            (None, None) => Ok(AuthSettings::TrustGateway),
        }
    }
}
