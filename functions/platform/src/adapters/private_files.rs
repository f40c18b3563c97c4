//! Local files that hold secrets (the store, mail with tokens, generated keys): folders
//! only the owner may enter (0700) and files only the owner may read (0600), tightened
//! when they already exist with looser modes.

use std::io::Write;
use std::path::Path;

/// Creates the folder (and its parents) if needed and makes it owner-only.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    set_mode(dir, 0o700)
}

/// Makes an existing file owner-only.
pub fn restrict_file(path: &Path) -> std::io::Result<()> {
    set_mode(path, 0o600)
}

/// Writes a new owner-only file (replacing any file there).
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    // An existing file keeps its mode on open: tighten it too.
    restrict_file(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[cfg(unix)]
    #[test]
    fn folders_and_files_are_owner_only_even_when_they_existed() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("data");
        std::fs::create_dir(&dir).unwrap();
        set_mode(&dir, 0o755).unwrap();
        create_private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        let file = dir.join("secret");
        std::fs::write(&file, "x").unwrap();
        set_mode(&file, 0o644).unwrap();
        write_private(&file, b"y").unwrap();
        assert_eq!(mode(&file), 0o600);
        assert_eq!(std::fs::read(&file).unwrap(), b"y");
    }
}
