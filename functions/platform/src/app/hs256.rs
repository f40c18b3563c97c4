//! The only JWS algorithm the platform signs and accepts, HS256, as `jsonwebtoken`'s
//! crypto provider over the `hmac` and `sha2` crates.
//!
//! `jsonwebtoken` keeps its claims, header and validation logic apart from the
//! cryptography; its bundled providers (aws-lc or RustCrypto) link every JWS algorithm
//! (RSA, ECDSA, EdDSA) into every binary, because the algorithm is picked at run time.
//! This provider answers HS256 and refuses anything else, so no other algorithm can be
//! reached even if a token's header names one.

use std::sync::Once;

use hmac::{Hmac, KeyInit, Mac};
use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{ErrorKind, Result};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use sha2::Sha256;

struct Hs256(Hmac<Sha256>);

impl Hs256 {
    fn keyed(algorithm: &Algorithm, key: &[u8]) -> Result<Self> {
        if *algorithm != Algorithm::HS256 {
            return Err(ErrorKind::InvalidAlgorithm.into());
        }
        Hmac::<Sha256>::new_from_slice(key).map(Self).map_err(|_| ErrorKind::InvalidKeyFormat.into())
    }

    fn mac(&self, message: &[u8]) -> Hmac<Sha256> {
        let mut mac = self.0.clone();
        mac.update(message);
        mac
    }
}

impl signature::Signer<Vec<u8>> for Hs256 {
    fn try_sign(&self, message: &[u8]) -> std::result::Result<Vec<u8>, signature::Error> {
        Ok(self.mac(message).finalize().into_bytes().to_vec())
    }
}

impl signature::Verifier<Vec<u8>> for Hs256 {
    /// Constant-time comparison (`Mac::verify_slice`).
    fn verify(&self, message: &[u8], signature: &Vec<u8>) -> std::result::Result<(), signature::Error> {
        self.mac(message).verify_slice(signature).map_err(|_| signature::Error::new())
    }
}

impl JwtSigner for Hs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

impl JwtVerifier for Hs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

fn signer(algorithm: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
    Ok(Box::new(Hs256::keyed(algorithm, key.as_bytes())?))
}

fn verifier(algorithm: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    Ok(Box::new(Hs256::keyed(algorithm, key.try_get_as_bytes()?)?))
}

static PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: signer,
    verifier_factory: verifier,
    // No JWK support: the platform never reads keys from JWK sets.
    key_utils: KeyUtils::new_unimplemented(),
};

/// Makes HS256 the process's JWT crypto (once; later calls do nothing).
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Fails only if another provider was installed first, which nothing in this crate does.
        let _ = PROVIDER.install_default();
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{decode, encode, Header, Validation};

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Claims {
        sub: String,
        exp: u64,
    }

    fn claims() -> Claims {
        Claims { sub: "user".into(), exp: crate::domain::time::unix_now() + 60 }
    }

    #[test]
    fn an_hs256_token_round_trips_with_the_rfc_7515_signature() {
        install();
        let key = b"a key of at least thirty-two bytes!!";
        let token = encode(&Header::new(Algorithm::HS256), &claims(), &EncodingKey::from_secret(key)).unwrap();
        let (message, signature) = token.rsplit_once('.').unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
        mac.update(message.as_bytes());
        let expected =
            base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, mac.finalize().into_bytes());
        assert_eq!(signature, expected);
        let read =
            decode::<Claims>(&token, &DecodingKey::from_secret(key), &Validation::new(Algorithm::HS256)).unwrap();
        assert_eq!(read.claims, claims());
    }

    #[test]
    fn a_token_signed_with_another_key_is_refused() {
        install();
        let token = encode(&Header::new(Algorithm::HS256), &claims(), &EncodingKey::from_secret(b"one key")).unwrap();
        let read =
            decode::<Claims>(&token, &DecodingKey::from_secret(b"another key"), &Validation::new(Algorithm::HS256));
        assert_eq!(read.unwrap_err().kind(), &ErrorKind::InvalidSignature);
    }

    #[test]
    fn other_algorithms_are_refused() {
        install();
        let made = encode(&Header::new(Algorithm::HS512), &claims(), &EncodingKey::from_secret(b"key"));
        assert_eq!(made.unwrap_err().kind(), &ErrorKind::InvalidAlgorithm);
    }
}
