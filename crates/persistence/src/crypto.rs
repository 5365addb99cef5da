//! Evidence encrypted at rest, envelope style (issue 20). Each stored file (an evidence upload
//! or a scan file) has a random 256-bit data key; each 1 MiB chunk is sealed with AES-256-GCM
//! under it, with a 96-bit nonce made of a random per-file prefix (4 bytes) and the chunk's
//! number (8 bytes), and with the file's kind, id, chunk number and chunk count as associated
//! data, so chunks cannot be swapped between files, reordered or dropped from the end. The data
//! key is wrapped (AES-256-GCM, random nonce, the file's kind and id as associated data) by the
//! operator's master key and stored in `content_keys` with the master key's id (the first 8
//! bytes of its SHA-256, hex).
//!
//! The cryptography is AWS-LC's (`aws-lc-rs`), whose FIPS 140-3 validated module the crate's
//! `fips` feature builds instead. The master key of the process is installed once at start
//! ([`install`]); with none, files are stored as before (plaintext) and encrypted files cannot
//! be read.

use crate::db::{self, DbConnection};
use crate::error::StoreError;
use crate::schema::{content_keys, evidence, evidence_chunks, scan_chunks, scans};
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use diesel::prelude::*;
use std::sync::{Arc, RwLock};
use zeroize::Zeroizing;

/// The kind of an evidence upload's content key.
pub const EVIDENCE: &str = "evidence";
/// The kind of a scan file's content key.
pub const SCAN: &str = "scan";
/// What sealing adds to each chunk: the GCM tag.
pub const TAG_LEN: usize = 16;
const KEY_LEN: usize = 32;
const PREFIX_LEN: usize = 4;

fn internal(what: impl std::fmt::Display) -> StoreError {
    StoreError::Internal(what.to_string())
}

fn random<const N: usize>() -> Result<Zeroizing<[u8; N]>, StoreError> {
    let mut out = Zeroizing::new([0u8; N]);
    aws_lc_rs::rand::fill(out.as_mut_slice())
        .map_err(|_| internal("the system's random number generator failed"))?;
    Ok(out)
}

fn aead_key(bytes: &[u8]) -> Result<LessSafeKey, StoreError> {
    UnboundKey::new(&AES_256_GCM, bytes)
        .map(LessSafeKey::new)
        .map_err(|_| internal("not an AES-256 key"))
}

/// The operator's master key (`POAM_EVIDENCE_KEY_FILE`). Its bytes live only inside AWS-LC's
/// key schedule (zeroed when dropped) and never print.
pub struct MasterKey {
    key: LessSafeKey,
    id: String,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey(id {})", self.id)
    }
}

impl MasterKey {
    /// A key file's content: 32 raw bytes, or 64 hexadecimal characters (surrounding
    /// whitespace, such as a final newline, ignored).
    pub fn parse(content: &[u8]) -> Result<MasterKey, String> {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        let text = content.trim_ascii();
        if text.len() == 2 * KEY_LEN && text.iter().all(u8::is_ascii_hexdigit) {
            for (i, pair) in text.chunks(2).enumerate() {
                let hi = char::from(pair[0]).to_digit(16).unwrap_or(0);
                let lo = char::from(pair[1]).to_digit(16).unwrap_or(0);
                bytes[i] = u8::try_from(hi * 16 + lo).unwrap_or(0);
            }
        } else if content.len() == KEY_LEN {
            bytes.copy_from_slice(content);
        } else {
            return Err(format!(
                "must hold 32 random bytes, raw or as 64 hexadecimal characters ({} bytes found); \
                 make one with `openssl rand -hex 32`",
                content.len()
            ));
        }
        if bytes.iter().all(|b| *b == bytes[0]) {
            return Err("is not a random key (all its bytes are equal)".into());
        }
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes.as_slice());
        let id: String = digest.as_ref()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let key = aead_key(bytes.as_slice()).map_err(|e| e.to_string())?;
        Ok(MasterKey { key, id })
    }

    /// Reads a key file (see [`MasterKey::parse`]); errors name the file, never its content.
    pub fn read(path: &std::path::Path) -> Result<MasterKey, String> {
        let content = Zeroizing::new(
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?,
        );
        MasterKey::parse(&content).map_err(|e| format!("{} {e}", path.display()))
    }

    /// The key's id, stored with every data key it wraps.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn wrap(&self, kind: &str, owner: &str, data_key: &[u8]) -> Result<Vec<u8>, StoreError> {
        let nonce = random::<NONCE_LEN>()?;
        let mut sealed = data_key.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(*nonce),
                Aad::from(wrap_aad(kind, owner)),
                &mut sealed,
            )
            .map_err(|_| internal("cannot wrap a data key"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    fn unwrap_key(
        &self,
        kind: &str,
        owner: &str,
        wrapped: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        let refused = || {
            internal(format!(
                "the data key of {kind} {owner} does not unwrap under master key {}: the wrong key, or a damaged row",
                self.id
            ))
        };
        if wrapped.len() != NONCE_LEN + KEY_LEN + TAG_LEN {
            return Err(refused());
        }
        let (nonce, sealed) = wrapped.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| refused())?;
        let mut buf = Zeroizing::new(sealed.to_vec());
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(wrap_aad(kind, owner)), buf.as_mut_slice())
            .map_err(|_| refused())?;
        Ok(Zeroizing::new(plain.to_vec()))
    }
}

fn wrap_aad(kind: &str, owner: &str) -> Vec<u8> {
    format!("poam data key v1\0{kind}\0{owner}").into_bytes()
}

fn chunk_aad(kind: &str, owner: &str, n: i32, chunks: i64) -> Vec<u8> {
    format!("poam chunk v1\0{kind}\0{owner}\0{n}\0{chunks}").into_bytes()
}

/// Whether AWS-LC runs in its FIPS mode (built with the `fips` feature).
pub fn fips_mode() -> bool {
    aws_lc_rs::try_fips_mode().is_ok()
}

/// The master key of this process: installed at start, read by every store and download.
static MASTER: RwLock<Option<Arc<MasterKey>>> = RwLock::new(None);

/// Installs (or, with `None`, removes) the process's master key.
pub fn install(key: Option<Arc<MasterKey>>) {
    match MASTER.write() {
        Ok(mut g) => *g = key,
        Err(poisoned) => *poisoned.into_inner() = key,
    }
}

/// The installed master key, if any.
pub fn installed() -> Option<Arc<MasterKey>> {
    match MASTER.read() {
        Ok(g) => g.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    }
}

/// The key that seals or opens the chunks of one file.
pub struct FileKey {
    key: LessSafeKey,
    prefix: [u8; PREFIX_LEN],
    kind: &'static str,
    owner: String,
    chunks: i64,
}

impl FileKey {
    fn nonce(&self, n: i32) -> Nonce {
        let mut nonce = [0u8; NONCE_LEN];
        nonce[..PREFIX_LEN].copy_from_slice(&self.prefix);
        nonce[PREFIX_LEN..].copy_from_slice(&i64::from(n).to_be_bytes());
        Nonce::assume_unique_for_key(nonce)
    }

    /// Seals chunk `n`: its ciphertext and tag.
    pub fn seal(&self, n: i32, plain: &[u8]) -> Result<Vec<u8>, StoreError> {
        let mut out = Vec::with_capacity(plain.len() + TAG_LEN);
        out.extend_from_slice(plain);
        self.key
            .seal_in_place_append_tag(
                self.nonce(n),
                Aad::from(chunk_aad(self.kind, &self.owner, n, self.chunks)),
                &mut out,
            )
            .map_err(|_| internal("cannot encrypt a chunk"))?;
        Ok(out)
    }

    /// Opens chunk `n` (refused when it was altered, moved or belongs to another file).
    pub fn open(&self, n: i32, mut sealed: Vec<u8>) -> Result<Vec<u8>, StoreError> {
        let len = self
            .key
            .open_in_place(
                self.nonce(n),
                Aad::from(chunk_aad(self.kind, &self.owner, n, self.chunks)),
                &mut sealed,
            )
            .map_err(|_| {
                internal(format!(
                    "chunk {n} of {} {} does not decrypt: it was altered or moved",
                    self.kind, self.owner
                ))
            })?
            .len();
        sealed.truncate(len);
        Ok(sealed)
    }
}

/// The number of stored chunks of a file of `size` bytes.
pub fn chunk_count(size: i64) -> i64 {
    let chunk = i64::try_from(crate::evidence::CHUNK).unwrap_or(i64::MAX);
    let size = size.max(0);
    size / chunk + i64::from(size % chunk != 0)
}

/// Begins storing a file (in the caller's transaction): with a master key installed, a new data
/// key for it, wrapped and recorded; `None` without one (the file is stored in plaintext).
pub fn begin(
    conn: &mut DbConnection,
    kind: &'static str,
    owner: &str,
    size: i64,
) -> Result<Option<FileKey>, StoreError> {
    match installed() {
        Some(master) => new_file_key(conn, &master, kind, owner, chunk_count(size)).map(Some),
        None => Ok(None),
    }
}

fn new_file_key(
    conn: &mut DbConnection,
    master: &MasterKey,
    kind: &'static str,
    owner: &str,
    chunks: i64,
) -> Result<FileKey, StoreError> {
    let data_key = random::<KEY_LEN>()?;
    let prefix = random::<PREFIX_LEN>()?;
    let wrapped = master.wrap(kind, owner, data_key.as_slice())?;
    diesel::insert_into(content_keys::table)
        .values((
            content_keys::owner_id.eq(owner),
            content_keys::owner_kind.eq(kind),
            content_keys::key_id.eq(master.id()),
            content_keys::wrapped_key.eq(&wrapped),
            content_keys::nonce_prefix.eq(prefix.as_slice()),
            content_keys::chunks.eq(chunks),
            content_keys::created_at.eq(db::now()),
        ))
        .execute(conn)?;
    Ok(FileKey {
        key: aead_key(data_key.as_slice())?,
        prefix: *prefix,
        kind,
        owner: owner.to_owned(),
        chunks,
    })
}

/// A stored content key row.
#[derive(Queryable)]
struct KeyRow {
    owner_kind: String,
    key_id: String,
    wrapped_key: Vec<u8>,
    nonce_prefix: Vec<u8>,
    chunks: i64,
}

fn key_row(conn: &mut DbConnection, owner: &str) -> Result<Option<KeyRow>, StoreError> {
    Ok(content_keys::table
        .find(owner)
        .select((
            content_keys::owner_kind,
            content_keys::key_id,
            content_keys::wrapped_key,
            content_keys::nonce_prefix,
            content_keys::chunks,
        ))
        .first(conn)
        .optional()?)
}

fn kind_of(word: &str) -> Result<&'static str, StoreError> {
    match word {
        EVIDENCE => Ok(EVIDENCE),
        SCAN => Ok(SCAN),
        other => Err(internal(format!("unknown content key kind `{other}`"))),
    }
}

fn file_key(master: &MasterKey, owner: &str, row: &KeyRow) -> Result<FileKey, StoreError> {
    if row.key_id != master.id() {
        return Err(internal(format!(
            "{} {owner} is encrypted under master key {}, not under the configured {}",
            row.owner_kind,
            row.key_id,
            master.id()
        )));
    }
    let kind = kind_of(&row.owner_kind)?;
    let data_key = master.unwrap_key(kind, owner, &row.wrapped_key)?;
    let prefix: [u8; PREFIX_LEN] = row
        .nonce_prefix
        .as_slice()
        .try_into()
        .map_err(|_| internal(format!("{kind} {owner}: a damaged nonce prefix")))?;
    Ok(FileKey {
        key: aead_key(data_key.as_slice())?,
        prefix,
        kind,
        owner: owner.to_owned(),
        chunks: row.chunks,
    })
}

/// The stored chunk `n` of `owner`, as read from its table (`None`: past the end), made
/// plaintext: opened when the file is encrypted. Read the chunk before calling this, so that a
/// file encrypted in between by `encrypt-existing` fails rather than shows ciphertext.
pub fn open_chunk(
    conn: &mut DbConnection,
    owner: &str,
    n: i32,
    stored: Option<Vec<u8>>,
) -> Result<Option<Vec<u8>>, StoreError> {
    let Some(row) = key_row(conn, owner)? else {
        return Ok(stored);
    };
    let Some(stored) = stored else {
        if i64::from(n) < row.chunks {
            return Err(internal(format!(
                "{} {owner} is missing chunk {n} of {}",
                row.owner_kind, row.chunks
            )));
        }
        return Ok(None);
    };
    let master = installed().ok_or_else(|| {
        internal(format!(
            "{} {owner} is encrypted and no master key is configured (POAM_EVIDENCE_KEY_FILE)",
            row.owner_kind
        ))
    })?;
    file_key(&master, owner, &row)?.open(n, stored).map(Some)
}

/// What the start-up check found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct KeyStatus {
    /// Files stored encrypted.
    pub encrypted: i64,
    /// Files stored in plaintext (evidence uploads and scan files).
    pub plaintext: i64,
}

/// Files stored in plaintext: evidence uploads (not scan links) and scan files without a key.
fn plaintext_count(conn: &mut DbConnection) -> Result<i64, StoreError> {
    let files: i64 = evidence::table
        .filter(evidence::scan_id.is_null())
        .filter(diesel::dsl::not(diesel::dsl::exists(
            content_keys::table.filter(content_keys::owner_id.eq(evidence::id)),
        )))
        .count()
        .get_result(conn)?;
    let scan_files: i64 = scans::table
        .filter(diesel::dsl::not(diesel::dsl::exists(
            content_keys::table.filter(content_keys::owner_id.eq(scans::id)),
        )))
        .count()
        .get_result(conn)?;
    Ok(files + scan_files)
}

/// The check at start: with encrypted evidence stored, the configured master key must be the
/// one that wraps it (proved by unwrapping one stored data key); without a key configured,
/// no file may be encrypted. Errors name the setting and say what to do.
pub fn check(conn: &mut DbConnection, master: Option<&MasterKey>) -> Result<KeyStatus, String> {
    let fail = |e: StoreError| format!("cannot check the evidence keys: {e}");
    let encrypted: i64 = content_keys::table
        .count()
        .get_result(conn)
        .map_err(|e| fail(e.into()))?;
    let plaintext = plaintext_count(conn).map_err(fail)?;
    let status = KeyStatus {
        encrypted,
        plaintext,
    };
    let Some(master) = master else {
        if encrypted > 0 {
            return Err(format!(
                "the database holds {encrypted} encrypted evidence file(s) but POAM_EVIDENCE_KEY_FILE is not set: \
                 set it to the master key they were encrypted with (the service does not start without it, so \
                 that it never stores evidence unencrypted beside encrypted evidence)"
            ));
        }
        return Ok(status);
    };
    let others: Vec<(String, i64)> = content_keys::table
        .filter(content_keys::key_id.ne(master.id()))
        .group_by(content_keys::key_id)
        .select((content_keys::key_id, diesel::dsl::count_star()))
        .load(conn)
        .map_err(|e| fail(e.into()))?;
    if let Some((other, n)) = others.first() {
        return Err(format!(
            "POAM_EVIDENCE_KEY_FILE holds master key {} but {n} evidence file(s) are encrypted under master key {other}: \
             the wrong key file, or a key rotation that has not finished (run `poam evidence-keys rotate --new-key-file` \
             again with the old key as POAM_EVIDENCE_KEY_FILE, then switch)",
            master.id()
        ));
    }
    let sample: Option<(String, KeyRow)> = content_keys::table
        .select((
            content_keys::owner_id,
            (
                content_keys::owner_kind,
                content_keys::key_id,
                content_keys::wrapped_key,
                content_keys::nonce_prefix,
                content_keys::chunks,
            ),
        ))
        .order(content_keys::owner_id)
        .first(conn)
        .optional()
        .map_err(|e| fail(e.into()))?;
    if let Some((owner, row)) = sample {
        file_key(master, &owner, &row).map_err(|_| {
            format!(
                "POAM_EVIDENCE_KEY_FILE does not unwrap the stored data keys (tried {} {owner}): the wrong key file",
                row.owner_kind
            )
        })?;
    }
    Ok(status)
}

/// What a rotation did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Rotated {
    pub rewrapped: u64,
    pub already: u64,
}

/// Re-wraps every data key under `new` (content is not re-encrypted), `batch` keys per
/// transaction. Resumable: keys already under `new` are left as they are, so a rotation cut
/// short is finished by running it again.
pub fn rotate(
    conn: &mut DbConnection,
    old: &MasterKey,
    new: &MasterKey,
    batch: i64,
    mut progress: impl FnMut(u64),
) -> Result<Rotated, StoreError> {
    if old.id() == new.id() {
        return Err(internal(
            "the new master key is the configured one: make a new key (`openssl rand -hex 32`)",
        ));
    }
    let already: i64 = content_keys::table
        .filter(content_keys::key_id.eq(new.id()))
        .count()
        .get_result(conn)?;
    let mut done = Rotated {
        rewrapped: 0,
        already: u64::try_from(already).unwrap_or(0),
    };
    loop {
        let n = db::write(conn, |conn| {
            let rows: Vec<(String, String, String, Vec<u8>)> = content_keys::table
                .filter(content_keys::key_id.ne(new.id()))
                .select((
                    content_keys::owner_id,
                    content_keys::owner_kind,
                    content_keys::key_id,
                    content_keys::wrapped_key,
                ))
                .order(content_keys::owner_id)
                .limit(batch.max(1))
                .load(conn)?;
            for (owner, kind, key_id, wrapped) in &rows {
                if key_id != old.id() {
                    return Err(internal(format!(
                        "the data key of {kind} {owner} is wrapped under master key {key_id}, which is neither \
                         the configured key ({}) nor the new one ({})",
                        old.id(),
                        new.id()
                    )));
                }
                let kind = kind_of(kind)?;
                let data_key = old.unwrap_key(kind, owner, wrapped)?;
                let rewrapped = new.wrap(kind, owner, &data_key)?;
                diesel::update(content_keys::table.find(owner))
                    .set((
                        content_keys::key_id.eq(new.id()),
                        content_keys::wrapped_key.eq(&rewrapped),
                    ))
                    .execute(conn)?;
            }
            Ok::<_, StoreError>(rows.len())
        })?;
        if n == 0 {
            return Ok(done);
        }
        done.rewrapped += u64::try_from(n).unwrap_or(0);
        progress(done.rewrapped);
    }
}

/// What `encrypt-existing` did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Encrypted {
    pub files: u64,
    pub bytes: u64,
    /// Files whose stored bytes do not match their recorded SHA-256 (encrypted as they are).
    pub mismatched: Vec<String>,
}

/// Encrypts the plaintext files (evidence uploads, then scan files) under `master`, one file
/// per transaction: a file is either wholly plaintext or wholly encrypted, so the command is
/// resumable (what it finished stays finished; it picks up the remaining plaintext files).
/// The recorded SHA-256 of the plaintext does not change; it is checked on the way.
pub fn encrypt_existing(
    conn: &mut DbConnection,
    master: &MasterKey,
    batch: i64,
    mut progress: impl FnMut(&Encrypted),
) -> Result<Encrypted, StoreError> {
    let mut done = Encrypted::default();
    for kind in [EVIDENCE, SCAN] {
        loop {
            let owners: Vec<String> = if kind == EVIDENCE {
                evidence::table
                    .filter(evidence::scan_id.is_null())
                    .filter(diesel::dsl::not(diesel::dsl::exists(
                        content_keys::table.filter(content_keys::owner_id.eq(evidence::id)),
                    )))
                    .select(evidence::id)
                    .order(evidence::id)
                    .limit(batch.max(1))
                    .load(conn)?
            } else {
                scans::table
                    .filter(diesel::dsl::not(diesel::dsl::exists(
                        content_keys::table.filter(content_keys::owner_id.eq(scans::id)),
                    )))
                    .select(scans::id)
                    .order(scans::id)
                    .limit(batch.max(1))
                    .load(conn)?
            };
            if owners.is_empty() {
                break;
            }
            for owner in owners {
                let (bytes, matches) =
                    db::write(conn, |conn| encrypt_file(conn, master, kind, &owner))?;
                done.files += 1;
                done.bytes += bytes;
                if !matches {
                    done.mismatched.push(format!("{kind} {owner}"));
                }
            }
            progress(&done);
        }
    }
    Ok(done)
}

/// Encrypts one plaintext file in place, chunk by chunk (the caller's transaction); its
/// plaintext size and whether its bytes match the recorded SHA-256.
fn encrypt_file(
    conn: &mut DbConnection,
    master: &MasterKey,
    kind: &'static str,
    owner: &str,
) -> Result<(u64, bool), StoreError> {
    if key_row(conn, owner)?.is_some() {
        return Ok((0, true));
    }
    let (numbers, sha256): (Vec<i32>, String) = if kind == EVIDENCE {
        (
            evidence_chunks::table
                .filter(evidence_chunks::evidence_id.eq(owner))
                .select(evidence_chunks::n)
                .order(evidence_chunks::n)
                .load(conn)?,
            evidence::table
                .find(owner)
                .select(evidence::sha256)
                .first(conn)?,
        )
    } else {
        (
            scan_chunks::table
                .filter(scan_chunks::scan_id.eq(owner))
                .select(scan_chunks::n)
                .order(scan_chunks::n)
                .load(conn)?,
            scans::table.find(owner).select(scans::sha256).first(conn)?,
        )
    };
    if numbers
        .iter()
        .enumerate()
        .any(|(i, n)| i64::from(*n) != i as i64)
    {
        return Err(internal(format!(
            "{kind} {owner}: its chunks are not numbered 0 to {}: not encrypted",
            numbers.len()
        )));
    }
    let file_key = new_file_key(conn, master, kind, owner, numbers.len() as i64)?;
    let mut hash = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    let mut bytes = 0u64;
    for n in numbers {
        let plain: Vec<u8> = if kind == EVIDENCE {
            evidence_chunks::table
                .find((owner, n))
                .select(evidence_chunks::data)
                .first(conn)?
        } else {
            scan_chunks::table
                .find((owner, n))
                .select(scan_chunks::data)
                .first(conn)?
        };
        hash.update(&plain);
        bytes += plain.len() as u64;
        let sealed = file_key.seal(n, &plain)?;
        if kind == EVIDENCE {
            diesel::update(evidence_chunks::table.find((owner, n)))
                .set(evidence_chunks::data.eq(&sealed))
                .execute(conn)?;
        } else {
            diesel::update(scan_chunks::table.find((owner, n)))
                .set(scan_chunks::data.eq(&sealed))
                .execute(conn)?;
        }
    }
    let digest: String = hash
        .finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok((bytes, digest.eq_ignore_ascii_case(&sha256)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> MasterKey {
        let hex: String = (0..32u8)
            .map(|i| format!("{:02x}", i.wrapping_mul(7) ^ byte))
            .collect();
        MasterKey::parse(format!("{hex}\n").as_bytes()).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn keys_parse_raw_or_hex_and_refuse_the_rest() {
        let raw: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(7)).collect();
        let a = MasterKey::parse(&raw).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.id(), key(0).id());
        assert_eq!(a.id().len(), 16);
        assert!(MasterKey::parse(b"short").is_err());
        assert!(MasterKey::parse(&[7u8; 32]).is_err());
        assert!(!format!("{a:?}").contains("0007"));
    }

    #[test]
    fn wrapped_keys_and_chunks_are_bound_to_their_file() {
        let master = key(1);
        let data = [9u8; 32];
        let wrapped = master
            .wrap(EVIDENCE, "a", &data)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(master.unwrap_key(EVIDENCE, "b", &wrapped).is_err());
        assert!(key(2).unwrap_key(EVIDENCE, "a", &wrapped).is_err());
        let fk = FileKey {
            key: aead_key(&data).unwrap_or_else(|e| panic!("{e}")),
            prefix: [1, 2, 3, 4],
            kind: EVIDENCE,
            owner: "a".into(),
            chunks: 2,
        };
        let sealed = fk.seal(0, b"hello").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(sealed.len(), 5 + TAG_LEN);
        assert!(fk.open(1, sealed.clone()).is_err());
        assert_eq!(
            fk.open(0, sealed).unwrap_or_else(|e| panic!("{e}")),
            b"hello"
        );
    }
}
