//! Signing and verification keys: the configured secret or public key, or (HS256 without a
//! configured secret) a random secret generated once into the data directory with mode 0600.

use crate::config::Settings;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use poam_http::auth::parse_algorithm;
use poam_http::{Authenticator, TokenIssuer};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

pub struct Keys {
    pub authenticator: Authenticator,
    /// Present when this process can mint tokens (HS256, or a configured private key).
    pub issuer: Option<TokenIssuer>,
    /// True when this call generated the HS256 secret (first start).
    pub generated: bool,
}

pub fn secret_path(settings: &Settings) -> PathBuf {
    settings.data_dir.join("jwt-secret")
}

/// Creates the data directory (mode 0700 when it is new).
pub fn ensure_data_dir(dir: &Path) -> Result<(), String> {
    if dir.exists() {
        return Ok(());
    }
    fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create data directory {}: {e}", dir.display()))?;
    set_mode(dir, 0o700)
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| format!("cannot set permissions of {}: {e}", path.display()))
}

#[cfg(not(unix))]
fn set_mode(_: &Path, _: u32) -> Result<(), String> {
    Ok(())
}

/// The estimated entropy of a secret, in bits: its length times the Shannon entropy of its
/// byte frequencies. A guess from the text alone (a random secret scores about its true
/// strength, a repeated character or a short repeated pattern far below).
pub fn entropy_bits(secret: &[u8]) -> f64 {
    let mut counts = [0usize; 256];
    for b in secret {
        counts[usize::from(*b)] += 1;
    }
    let n = secret.len() as f64;
    let per_byte: f64 = counts
        .iter()
        .filter(|c| **c > 0)
        .map(|c| {
            let p = *c as f64 / n;
            -p * p.log2()
        })
        .sum();
    per_byte * n
}

/// The least estimated entropy an HS256 secret may have.
pub const MIN_SECRET_BITS: f64 = 96.0;

/// Refuses a secret shorter than 32 bytes, or one whose bytes are too few or too repetitive
/// to be random (`aaaa…`, `abab…`).
pub fn check_secret(secret: &[u8], what: &str) -> Result<(), String> {
    if secret.len() < 32 {
        return Err(format!("{what} must have at least 32 bytes"));
    }
    let distinct = secret
        .iter()
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let bits = entropy_bits(secret);
    if distinct < 8 || bits < MIN_SECRET_BITS {
        return Err(format!(
            "{what} is too weak: {distinct} distinct characters, about {bits:.0} bits of entropy \
             (at least 8 and {MIN_SECRET_BITS:.0} are needed); use a random one, e.g. \
             `openssl rand -hex 32`"
        ));
    }
    Ok(())
}

/// Refuses a file holding a secret (or settings that may hold one) that its group or others
/// may read or write.
#[cfg(unix)]
pub fn check_private(path: &Path, what: &str) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(path)
        .map_err(|e| format!("cannot read {what} {}: {e}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(format!(
            "{what} {} is open to its group or others (mode {:04o}): it may hold secrets; \
             restrict it with `chmod 600 {}` (and keep it owned by the service's user)",
            path.display(),
            mode & 0o7777,
            path.display()
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
pub fn check_private(_: &Path, _: &str) -> Result<(), String> {
    Ok(())
}

/// Reads the generated secret, or creates it (32 random bytes, hex) with mode 0600.
fn generated_secret(path: &Path) -> Result<(Vec<u8>, bool), String> {
    match fs::read_to_string(path) {
        Ok(text) => {
            check_private(path, "the signing key file")?;
            let secret = text.trim().as_bytes().to_vec();
            if secret.len() < 32 {
                return Err(format!(
                    "{} holds fewer than 32 bytes; delete it to generate a new one",
                    path.display()
                ));
            }
            Ok((secret, false))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut raw = [0u8; 32];
            getrandom::fill(&mut raw)
                .map_err(|e| format!("no randomness for the signing key: {e}"))?;
            let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
            let mut options = fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            match options.open(path) {
                Ok(mut file) => {
                    file.write_all(hex.as_bytes())
                        .and_then(|_| file.sync_all())
                        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                    Ok((hex.into_bytes(), true))
                }
                // Another process created it first: use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => generated_secret(path),
                Err(e) => Err(format!("cannot create {}: {e}", path.display())),
            }
        }
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

fn read_pem(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    fs::read(path).map_err(|e| format!("cannot read the JWT {what} {}: {e}", path.display()))
}

pub fn load(settings: &Settings) -> Result<Keys, String> {
    let jwt = &settings.jwt;
    let algorithm =
        parse_algorithm(&jwt.algorithm).map_err(|e| format!("POAM_JWT_ALGORITHM: {e}"))?;
    // An identity provider's key set (POAM_OIDC_ISSUER, POAM_JWKS_URL, POAM_JWKS_FILE).
    if let Some(authenticator) = crate::idp_authenticator(settings, true)? {
        return Ok(Keys {
            authenticator,
            issuer: None,
            generated: false,
        });
    }
    let (decoding, encoding, generated) = match algorithm {
        Algorithm::HS256 => {
            if jwt.public_key_file.is_some() {
                return Err("POAM_JWT_PUBLIC_KEY_FILE is set but POAM_JWT_ALGORITHM is HS256: pin RS256, ES256 or EdDSA".into());
            }
            let (secret, generated) = match &jwt.secret {
                Some(s) => {
                    check_secret(s.expose().as_bytes(), "POAM_JWT_SECRET")?;
                    (s.expose().as_bytes().to_vec(), false)
                }
                None => {
                    ensure_data_dir(&settings.data_dir)?;
                    generated_secret(&secret_path(settings))?
                }
            };
            (
                DecodingKey::from_secret(&secret),
                Some(EncodingKey::from_secret(&secret)),
                generated,
            )
        }
        _ => {
            if jwt.secret.is_some() {
                return Err(format!(
                    "POAM_JWT_SECRET is set but POAM_JWT_ALGORITHM is {}: unset one of them",
                    jwt.algorithm
                ));
            }
            let public = jwt.public_key_file.as_deref().ok_or_else(|| {
                format!(
                    "POAM_JWT_ALGORITHM={} needs POAM_JWT_PUBLIC_KEY_FILE",
                    jwt.algorithm
                )
            })?;
            let pem = read_pem(public, "public key")?;
            let bad = |e: jsonwebtoken::errors::Error| {
                format!(
                    "POAM_JWT_PUBLIC_KEY_FILE: not a {} public key: {e}",
                    jwt.algorithm
                )
            };
            let decoding = match algorithm {
                Algorithm::RS256 => DecodingKey::from_rsa_pem(&pem),
                Algorithm::ES256 => DecodingKey::from_ec_pem(&pem),
                _ => DecodingKey::from_ed_pem(&pem),
            }
            .map_err(bad)?;
            let encoding = match &jwt.private_key_file {
                None => None,
                Some(path) => {
                    check_private(path, "the JWT private key file")?;
                    let pem = read_pem(path, "private key")?;
                    let bad = |e: jsonwebtoken::errors::Error| {
                        format!(
                            "POAM_JWT_PRIVATE_KEY_FILE: not a {} private key: {e}",
                            jwt.algorithm
                        )
                    };
                    Some(
                        match algorithm {
                            Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem),
                            Algorithm::ES256 => EncodingKey::from_ec_pem(&pem),
                            _ => EncodingKey::from_ed_pem(&pem),
                        }
                        .map_err(bad)?,
                    )
                }
            };
            (decoding, encoding, false)
        }
    };
    Ok(Keys {
        authenticator: crate::with_claims_map(
            Authenticator::new(
                algorithm,
                decoding,
                jwt.issuer.as_deref(),
                jwt.audience.as_deref(),
            )
            .with_max_lifetime(jwt.max_ttl),
            settings,
        )?,
        issuer: encoding
            .map(|key| TokenIssuer::new(algorithm, key, jwt.issuer.clone(), jwt.audience.clone())),
        generated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_secrets_are_refused_and_random_ones_accepted() {
        let weak = [
            "a".repeat(32),
            "ab".repeat(20),
            "abcd".repeat(10),
            "short".to_owned(),
        ];
        for w in &weak {
            let err = check_secret(w.as_bytes(), "POAM_JWT_SECRET")
                .err()
                .unwrap_or_default();
            assert!(err.starts_with("POAM_JWT_SECRET"), "{w}: {err}");
        }
        for ok in [
            "integration-test-secret-0123456789abcdef",
            "bench-secret-bench-secret-bench-secret-00",
            "3f9c1e7a5b2d4c6e8f0a1b3c5d7e9f21",
            "0123456789abcdef0123456789abcdef",
        ] {
            assert_eq!(check_secret(ok.as_bytes(), "s"), Ok(()), "{ok}");
        }
    }
}
