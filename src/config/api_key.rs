//! The API key when `API_KEY` is unset: generated once, kept in the data directory (mode 0600).

use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rand::RngCore;

use crate::secret::Secret;

/// Where the accepted keys came from, for the startup log (never the keys themselves).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiKeySource {
    Environment,
    Generated(PathBuf),
    File(PathBuf),
}

/// The configured keys, or the key in `<data_dir>/api_key`, created on first start.
pub fn resolve_api_keys(
    configured: &[Secret],
    data_dir: &Path,
) -> std::io::Result<(Vec<Secret>, ApiKeySource)> {
    if !configured.is_empty() {
        return Ok((configured.to_vec(), ApiKeySource::Environment));
    }
    let path = data_dir.join("api_key");
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => {
            return Ok((vec![Secret::new(text.trim())], ApiKeySource::File(path)));
        }
        Ok(_) => {}
        Err(error) if error.kind() == ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    std::fs::create_dir_all(data_dir)?;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let key = hex::encode(bytes);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)?;
    file.write_all(key.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    Ok((vec![Secret::new(key)], ApiKeySource::Generated(path)))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_key_is_generated_once_with_private_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let (first, source) = resolve_api_keys(&[], dir.path()).unwrap();
        let path = dir.path().join("api_key");
        assert_eq!(source, ApiKeySource::Generated(path.clone()));
        assert_eq!(first[0].expose().len(), 64);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        let (second, source) = resolve_api_keys(&[], dir.path()).unwrap();
        assert_eq!(source, ApiKeySource::File(path));
        assert_eq!(first, second);
    }

    #[test]
    fn configured_keys_win() {
        let dir = tempfile::tempdir().unwrap();
        let keys = [Secret::new("0123456789abcdef")];
        let (found, source) = resolve_api_keys(&keys, dir.path()).unwrap();
        assert_eq!(source, ApiKeySource::Environment);
        assert_eq!(found, keys);
        assert!(!dir.path().join("api_key").exists());
    }
}
