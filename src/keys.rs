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

/// Reads the generated secret, or creates it (32 random bytes, hex) with mode 0600.
fn generated_secret(path: &Path) -> Result<(Vec<u8>, bool), String> {
    match fs::read_to_string(path) {
        Ok(text) => {
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
    let (decoding, encoding, generated) = match algorithm {
        Algorithm::HS256 => {
            if jwt.public_key_file.is_some() {
                return Err("POAM_JWT_PUBLIC_KEY_FILE is set but POAM_JWT_ALGORITHM is HS256: pin RS256, ES256 or EdDSA".into());
            }
            let (secret, generated) = match &jwt.secret {
                Some(s) if s.expose().len() < 32 => {
                    return Err("POAM_JWT_SECRET must have at least 32 bytes".into())
                }
                Some(s) => (s.expose().as_bytes().to_vec(), false),
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
        authenticator: Authenticator::new(
            algorithm,
            decoding,
            jwt.issuer.as_deref(),
            jwt.audience.as_deref(),
        )
        .with_max_lifetime(jwt.max_ttl),
        issuer: encoding
            .map(|key| TokenIssuer::new(algorithm, key, jwt.issuer.clone(), jwt.audience.clone())),
        generated,
    })
}
