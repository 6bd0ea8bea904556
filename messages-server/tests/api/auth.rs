//! Authentication: with `AUTH_JWT_SECRET` (HS256) or `AUTH_JWT_PUBLIC_KEY` (RS256, ES256), writes
//! need a valid bearer token whose `sub` is the user, and `X-User-Id` is ignored.

use crate::helpers::{new_id, start, test_config};
use http::{Method, StatusCode};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use messages_server::config::AuthSettings;

const SECRET: &str = "a-test-secret-of-at-least-thirty-two-bytes";

fn token(alg: Algorithm, key: &EncodingKey, sub: &str, expires_in: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    let claims = serde_json::json!({ "sub": sub, "exp": now + expires_in, "iat": now });
    jsonwebtoken::encode(&Header::new(alg), &claims, key).expect("encode")
}

async fn post(
    app: &crate::helpers::TestApp,
    thread: &str,
    headers: &[(&str, &str)],
) -> crate::helpers::TestResponse {
    app.request(
        Method::POST,
        &format!("/threads/{thread}/messages"),
        headers,
        Some(br#"{"content":"signed"}"#.to_vec()),
    )
    .await
}

/// A test configuration verifying HS256 tokens signed with `SECRET`, roles in `roles`.
fn hs256_config() -> messages_server::Config {
    let mut config = test_config();
    config.auth = AuthSettings::Hs256 {
        secret: SECRET.into(),
        issuer: None,
        audience: None,
        roles_claim: "roles".into(),
    };
    config
}

#[tokio::test]
async fn hs256_tokens_name_the_author_and_x_user_id_is_ignored() {
    let config = hs256_config();
    let app = start(config).await;
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    let thread = new_id();
    let user = new_id();
    let good = format!("Bearer {}", token(Algorithm::HS256, &key, &user, 300));
    let spoofed = new_id();
    let r = post(
        &app,
        &thread,
        &[("authorization", &good), ("x-user-id", &spoofed)],
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.json()["user_id"], user, "the token's sub, not X-User-Id");

    let expired = format!("Bearer {}", token(Algorithm::HS256, &key, &user, -3_600));
    let other_key = EncodingKey::from_secret(b"another-secret-of-at-least-thirty-two-bytes!");
    let forged = format!("Bearer {}", token(Algorithm::HS256, &other_key, &user, 300));
    let not_a_user = format!("Bearer {}", token(Algorithm::HS256, &key, "alice", 300));
    for headers in [
        vec![("x-user-id", user.as_str())],
        vec![("authorization", expired.as_str())],
        vec![("authorization", forged.as_str())],
        vec![("authorization", not_a_user.as_str())],
        vec![("authorization", "Bearer not.a.jwt")],
        vec![("authorization", "Basic dXNlcjpwYXNz")],
    ] {
        let r = post(&app, &thread, &headers).await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (StatusCode::UNAUTHORIZED, "unauthorized"),
            "{headers:?}"
        );
        assert_eq!(
            r.headers.get("www-authenticate").map(|v| v.as_bytes()),
            Some(&b"Bearer"[..])
        );
    }
    // Edits and deletes are writes too; reads stay open.
    let id = r.json()["id"].as_str().unwrap_or_default().to_owned();
    let r = app
        .request(
            Method::DELETE,
            &format!("/threads/{thread}/messages/{id}"),
            &[("x-user-id", &user)],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let stranger = format!("Bearer {}", token(Algorithm::HS256, &key, &new_id(), 300));
    let r = app
        .request(
            Method::DELETE,
            &format!("/threads/{thread}/messages/{id}"),
            &[("authorization", &stranger)],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .request(
            Method::DELETE,
            &format!("/threads/{thread}/messages/{id}"),
            &[("authorization", &good)],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(app.list(&thread, "").await.status, StatusCode::OK);
}

#[tokio::test]
async fn rs256_and_es256_public_keys_verify_tokens() {
    for (alg, private, public) in [
        (
            Algorithm::RS256,
            include_str!("fixtures/rs256-test-private.pem"),
            include_str!("fixtures/rs256-test-public.pem"),
        ),
        (
            Algorithm::ES256,
            include_str!("fixtures/es256-test-private.pem"),
            include_str!("fixtures/es256-test-public.pem"),
        ),
    ] {
        let mut config = test_config();
        config.auth = AuthSettings::PublicKey {
            pem: public.into(),
            issuer: None,
            audience: None,
            roles_claim: "roles".into(),
        };
        let app = start(config).await;
        let key = match alg {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(private.as_bytes()),
            _ => EncodingKey::from_ec_pem(private.as_bytes()),
        }
        .expect("test key");
        let user = new_id();
        let thread = new_id();
        let good = format!("Bearer {}", token(alg, &key, &user, 300));
        let r = post(&app, &thread, &[("authorization", &good)]).await;
        assert_eq!(r.status, StatusCode::CREATED, "{alg:?}");
        assert_eq!(r.json()["user_id"], user);
        // An HS256 token made with the public key as secret (algorithm confusion) is refused.
        let confused = format!(
            "Bearer {}",
            token(
                Algorithm::HS256,
                &EncodingKey::from_secret(public.as_bytes()),
                &user,
                300
            )
        );
        assert_eq!(
            post(&app, &thread, &[("authorization", &confused)])
                .await
                .status,
            StatusCode::UNAUTHORIZED
        );
    }
}

/// A token with `extra` claims beside `sub` and `exp`.
fn token_with(alg: Algorithm, key: &EncodingKey, sub: &str, extra: serde_json::Value) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    let mut claims = serde_json::json!({ "sub": sub, "exp": now + 300 });
    if let (Some(claims), Some(extra)) = (claims.as_object_mut(), extra.as_object()) {
        claims.extend(extra.clone());
    }
    jsonwebtoken::encode(&Header::new(alg), &claims, key).expect("encode")
}

/// A token's roles claim grants `moderator`: the default `roles` on HS256, a claim of another
/// name on RS256, as a list or as a space-separated string; `X-User-Roles` is ignored when the
/// server verifies tokens itself.
#[tokio::test]
async fn a_tokens_roles_claim_grants_moderator() {
    let rs_private = include_str!("fixtures/rs256-test-private.pem");
    let rs_public = include_str!("fixtures/rs256-test-public.pem");
    let cases = [
        (
            Algorithm::HS256,
            EncodingKey::from_secret(SECRET.as_bytes()),
            AuthSettings::Hs256 {
                secret: SECRET.into(),
                issuer: None,
                audience: None,
                roles_claim: "roles".into(),
            },
            "roles",
        ),
        (
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(rs_private.as_bytes()).expect("test key"),
            AuthSettings::PublicKey {
                pem: rs_public.into(),
                issuer: None,
                audience: None,
                roles_claim: "https://chat.example/roles".into(),
            },
            "https://chat.example/roles",
        ),
    ];
    for (alg, key, settings, claim) in cases {
        let mut config = test_config();
        config.auth = settings;
        let app = start(config).await;
        let bearer = |sub: &str, roles: serde_json::Value| {
            format!(
                "Bearer {}",
                token_with(alg, &key, sub, serde_json::json!({ claim: roles }))
            )
        };
        let (thread, author) = (new_id(), new_id());
        let author_bearer = bearer(&author, serde_json::json!([]));
        let mut ids = Vec::new();
        for _ in 0..2 {
            let r = post(&app, &thread, &[("authorization", &author_bearer)]).await;
            assert_eq!(r.status, StatusCode::CREATED, "{alg:?}");
            ids.push(r.json()["id"].as_str().unwrap_or_default().to_owned());
        }
        let delete = |id: &str, auth: String, query: &str| {
            let path = format!("/threads/{thread}/messages/{id}{query}");
            let app = &app;
            async move {
                app.request(
                    Method::DELETE,
                    &path,
                    &[("authorization", &auth), ("x-user-roles", "moderator")],
                    None,
                )
                .await
                .status
            }
        };
        // A reader's token, even with the header the gateway would set: not a moderator.
        let reader = bearer(&new_id(), serde_json::json!(["reader"]));
        assert_eq!(
            delete(&ids[0], reader, "").await,
            StatusCode::FORBIDDEN,
            "{alg:?}"
        );
        let moderator = new_id();
        let listed = bearer(&moderator, serde_json::json!(["reader", "moderator"]));
        assert_eq!(
            delete(&ids[0], listed, "?reason=spam").await,
            StatusCode::NO_CONTENT,
            "{alg:?}"
        );
        let scoped = bearer(&moderator, serde_json::json!("openid moderator"));
        assert_eq!(delete(&ids[1], scoped, "").await, StatusCode::NO_CONTENT);
        let changes = app.changes(&thread, "?since=2").await;
        assert_eq!(changes["changes"][0]["deleted_by"], moderator.as_str());
        assert_eq!(changes["changes"][0]["reason"], "spam");
        assert_eq!(changes["changes"][1]["deleted_by"], moderator.as_str());
    }
}

/// A token whose roles claim lists `service` is not rate limited; the same user with a token
/// without it is, and an `X-User-Roles` header claiming it counts for nothing when the server
/// verifies tokens itself.
#[tokio::test]
async fn a_service_token_is_not_rate_limited() {
    let mut config = hs256_config();
    config.rate_limit = messages_server::config::RateLimitSettings {
        rate: Some(messages_core::limit::Rate::new(0.5, 1).expect("rate")),
        ..Default::default()
    };
    let app = start(config).await;
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    let (thread, bot) = (new_id(), new_id());
    let service = format!(
        "Bearer {}",
        token_with(
            Algorithm::HS256,
            &key,
            &bot,
            serde_json::json!({"roles": ["service"]})
        )
    );
    for _ in 0..3 {
        let r = post(&app, &thread, &[("authorization", &service)]).await;
        assert_eq!(r.status, StatusCode::CREATED);
        assert!(r.headers.get("x-ratelimit-limit").is_none());
    }
    let plain = format!(
        "Bearer {}",
        token_with(Algorithm::HS256, &key, &bot, serde_json::json!({}))
    );
    let headers = [
        ("authorization", plain.as_str()),
        ("x-user-roles", "service"),
    ];
    assert_eq!(
        post(&app, &thread, &headers).await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        post(&app, &thread, &headers).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}
