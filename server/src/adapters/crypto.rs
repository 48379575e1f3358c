//! Random tokens, one-way hashes for stored tokens, and the box that encrypts stored credentials.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::Path;

/// A fresh unguessable token: `prefix` + 32 random bytes, base64url.
pub fn random_token(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// How tokens are stored: SHA-256, hex. The token itself never reaches the database.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Encrypts credentials Potluck must keep (identity provider client secrets, git and Docker
/// credentials) with XChaCha20-Poly1305 under the instance's secret key.
#[derive(Clone)]
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
    /// Derived from the instance key: signs audit checkpoints (never used to encrypt).
    signing_key: [u8; 32],
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("secret_key must be 32 bytes, base64-encoded")]
    BadKey,
    #[error("cannot read or write the secret key file {path}: {source}")]
    File { path: String, source: std::io::Error },
}

#[derive(Debug, thiserror::Error)]
#[error("stored credential cannot be decrypted (was the secret key changed?)")]
pub struct DecryptError;

impl SecretBox {
    pub fn from_base64(key: &str) -> Result<SecretBox, KeyError> {
        let bytes = STANDARD.decode(key.trim()).map_err(|_| KeyError::BadKey)?;
        let cipher = XChaCha20Poly1305::new_from_slice(&bytes).map_err(|_| KeyError::BadKey)?;
        let mut derive = Sha256::new();
        derive.update(b"potluck audit checkpoint signing key v1\0");
        derive.update(&bytes);
        Ok(SecretBox { cipher, signing_key: derive.finalize().into() })
    }

    /// The configured key, or the one in `<data_dir>/secret.key`, created (mode 0600) when absent.
    pub fn load_or_create(configured: Option<&str>, data_dir: &Path) -> Result<SecretBox, KeyError> {
        if let Some(key) = configured {
            return SecretBox::from_base64(key);
        }
        let path = data_dir.join("secret.key");
        let file_err = |source| KeyError::File { path: path.display().to_string(), source };
        if path.exists() {
            let key = std::fs::read_to_string(&path).map_err(file_err)?;
            return SecretBox::from_base64(&key);
        }
        std::fs::create_dir_all(data_dir).map_err(file_err)?;
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let key = STANDARD.encode(bytes);
        write_private(&path, &key).map_err(file_err)?;
        SecretBox::from_base64(&key)
    }

    fn mac(&self, data: &str) -> Option<hmac::Hmac<Sha256>> {
        use hmac::Mac;
        // HMAC takes a key of any length: this cannot fail.
        let mut mac = <hmac::Hmac<Sha256> as Mac>::new_from_slice(&self.signing_key).ok()?;
        mac.update(data.as_bytes());
        Some(mac)
    }

    /// HMAC-SHA256 of `data` under the key derived for signing, hex.
    pub fn sign(&self, data: &str) -> String {
        use hmac::Mac;
        self.mac(data).map(|m| hex::encode(m.finalize().into_bytes())).unwrap_or_default()
    }

    /// Whether `signature` is this instance's signature of `data` (compared in constant time).
    pub fn verify_signature(&self, data: &str, signature: &str) -> bool {
        use hmac::Mac;
        let Ok(bytes) = hex::decode(signature) else { return false };
        self.mac(data).is_some_and(|m| m.verify_slice(&bytes).is_ok())
    }

    pub fn seal(&self, plaintext: &str) -> Vec<u8> {
        let mut nonce = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let mut out = nonce.to_vec();
        // Encryption with a valid key and a 24-byte nonce cannot fail.
        if let Ok(sealed) = self.cipher.encrypt(XNonce::from_slice(&nonce), plaintext.as_bytes()) {
            out.extend_from_slice(&sealed);
        }
        out
    }

    pub fn open(&self, sealed: &[u8]) -> Result<String, DecryptError> {
        if sealed.len() < 24 {
            return Err(DecryptError);
        }
        let (nonce, body) = sealed.split_at(24);
        let plain = self.cipher.decrypt(XNonce::from_slice(nonce), body).map_err(|_| DecryptError)?;
        String::from_utf8(plain).map_err(|_| DecryptError)
    }
}

impl fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBox(<key>)")
    }
}

fn write_private(path: &Path, content: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    f.write_all(content.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens() {
        let dir = std::env::temp_dir().join(format!("potluck-key-{}", std::process::id()));
        let b = SecretBox::load_or_create(None, &dir).unwrap();
        let sealed = b.seal("client-secret");
        assert!(!String::from_utf8_lossy(&sealed).contains("client-secret"));
        assert_eq!(b.open(&sealed).unwrap(), "client-secret");
        // The same key file opens it again; a different key does not.
        let again = SecretBox::load_or_create(None, &dir).unwrap();
        assert_eq!(again.open(&sealed).unwrap(), "client-secret");
        let other = SecretBox::from_base64(&STANDARD.encode([7u8; 32])).unwrap();
        assert!(other.open(&sealed).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let a = random_token("plk_");
        assert!(a.starts_with("plk_"));
        assert_ne!(a, random_token("plk_"));
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), a);
    }
}
