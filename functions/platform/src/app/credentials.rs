//! Secrets handling: password hashes (argon2id at OWASP parameters), random secrets,
//! SHA-256 digests of tokens kept at rest, and signed access tokens (JWT, HS256).

use std::sync::OnceLock;

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::access::Permission;

/// Argon2id, m = 19 MiB, t = 2, p = 1: the OWASP Password Storage Cheat Sheet minimum
/// (and the `argon2` crate's defaults).
fn hasher() -> Argon2<'static> {
    Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, argon2::Params::DEFAULT)
}

fn hash_now(password: &str) -> String {
    hasher().hash_password(password.as_bytes()).expect("argon2 with default parameters hashes").to_string()
}

fn verify_now(password: &str, phc: &str) -> bool {
    hasher().verify_password(password.as_bytes(), phc).is_ok()
}

/// Hashing costs ~20 ms of CPU and 19 MiB: it runs on the blocking pool, at most one per
/// core at a time, so sign-ins never stall the async workers that answer everything else.
async fn off_the_workers<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    static PERMITS: OnceLock<tokio::sync::Semaphore> = OnceLock::new();
    let permits = PERMITS.get_or_init(|| {
        tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get))
    });
    let _permit = permits.acquire().await.expect("the semaphore is never closed");
    tokio::task::spawn_blocking(work).await.expect("password hashing does not panic")
}

/// A PHC string (`$argon2id$v=19$m=19456,t=2,p=1$...`).
pub async fn hash_password(password: &str) -> String {
    let password = password.to_string();
    off_the_workers(move || hash_now(&password)).await
}

pub async fn verify_password(password: &str, phc: &str) -> bool {
    let (password, phc) = (password.to_string(), phc.to_string());
    off_the_workers(move || verify_now(&password, &phc)).await
}

/// Spends the same time as a real check when there is no account, so timing does not
/// tell whether an email is registered.
pub async fn verify_against_nothing(password: &str) {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let password = password.to_string();
    off_the_workers(move || {
        let dummy = DUMMY.get_or_init(|| hash_now("no account has this password"));
        let _ = verify_now(&password, dummy);
    })
    .await;
}

/// 256 random bits, hex.
pub fn random_secret() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    crate::domain::hex::lower(&bytes)
}

pub fn sha256_hex(text: &str) -> String {
    crate::domain::hex::lower(&Sha256::digest(text.as_bytes()))
}

/// The SHA-256 digest of `text` (raw bytes, for comparisons that need no text form).
pub fn sha256(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// Constant-time equality of two digests.
pub fn same_digest(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The claims of an access token (the original API's, plus roles, permissions, session and generation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub sub: String,
    pub email: String,
    pub username: String,
    pub tenant_id: String,
    pub exp: u64,
    pub iat: u64,
    pub jti: String,
    pub roles: Vec<String>,
    pub perms: Vec<Permission>,
    /// The session the token belongs to; logging out revokes it.
    pub sid: String,
    /// The user's token generation when it was issued: bumping it ends every token at once.
    #[serde(default)]
    pub gen: u64,
}

/// How long after its `exp` a token is still taken (clock skew between processes).
const EXPIRY_LEEWAY_SECONDS: u64 = 5;

/// Signs and verifies access tokens with one symmetric key.
#[derive(Clone)]
pub struct TokenSigner {
    encoding: EncodingKey,
    decoding: DecodingKey,
    pub access_ttl_seconds: u64,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner").field("access_ttl_seconds", &self.access_ttl_seconds).finish_non_exhaustive()
    }
}

pub use crate::domain::time::unix_now;

impl TokenSigner {
    /// Access tokens live 15 minutes: short enough that a revoked session's tokens die soon everywhere.
    pub const DEFAULT_ACCESS_TTL: u64 = 15 * 60;

    pub fn new(secret: &str) -> Self {
        super::hs256::install();
        Self {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            access_ttl_seconds: Self::DEFAULT_ACCESS_TTL,
        }
    }

    pub fn sign(&self, claims: &AccessClaims) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .expect("HS256 signing does not fail")
    }

    /// Checks signature, algorithm and expiry; `None` for anything else.
    pub fn verify(&self, token: &str) -> Option<AccessClaims> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = EXPIRY_LEEWAY_SECONDS;
        validation.set_required_spec_claims(&["exp", "iat", "sub"]);
        jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &validation).ok().map(|data| data.claims)
    }

    /// Whether claims verified earlier are still unexpired at `now` (as [`Self::verify`]
    /// judges expiry).
    pub fn unexpired(claims: &AccessClaims, now: u64) -> bool {
        claims.exp.saturating_add(EXPIRY_LEEWAY_SECONDS) >= now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passwords_hash_with_argon2id_at_owasp_parameters() {
        let phc = hash_password("correct horse battery staple").await;
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_password("correct horse battery staple", &phc).await);
        assert!(!verify_password("wrong horse battery staple", &phc).await);
        assert_ne!(phc, hash_password("correct horse battery staple").await, "salted");
    }

    /// On a single-threaded runtime, a task spawned before the hash runs while it hashes:
    /// the hash yields its worker instead of blocking it.
    #[tokio::test(flavor = "current_thread")]
    async fn hashing_leaves_the_async_worker_free() {
        let order = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let other = {
            let order = order.clone();
            tokio::spawn(async move { order.lock().unwrap().push("other task") })
        };
        let hashed = hash_password("correct horse battery staple").await;
        order.lock().unwrap().push("hash");
        other.await.unwrap();
        assert!(hashed.starts_with("$argon2id$"));
        assert_eq!(*order.lock().unwrap(), ["other task", "hash"]);
    }

    fn claims(exp: u64) -> AccessClaims {
        AccessClaims {
            sub: "u1".into(),
            email: "a@b.co".into(),
            username: "a".into(),
            tenant_id: "t".into(),
            exp,
            iat: unix_now(),
            jti: "j".into(),
            roles: vec!["viewer".into()],
            perms: vec![Permission::ConfigRead],
            sid: "s".into(),
            gen: 0,
        }
    }

    #[test]
    fn tokens_verify_only_with_the_key_and_before_expiry() {
        let signer = TokenSigner::new("k1-0123456789abcdef0123456789abcdef");
        let token = signer.sign(&claims(unix_now() + 60));
        assert_eq!(signer.verify(&token).unwrap().sub, "u1");
        assert!(TokenSigner::new("other-key-0123456789abcdef0123456789").verify(&token).is_none());
        assert!(signer.verify(&signer.sign(&claims(unix_now() - 60))).is_none(), "expired");
        let mut tampered = token.clone();
        tampered.replace_range(token.len() - 3.., "AAA");
        assert!(signer.verify(&tampered).is_none());
    }
}
