//! Reading the small files the service is configured with (kubeconfigs, certificates,
//! keys, tokens): regular files only, and never more than [`MAX_FILE`] bytes, so that a
//! path such as `/dev/zero` or a FIFO can neither exhaust memory nor block start-up.

use std::io::{self, Read};
use std::path::Path;

/// The largest configuration file read (a kubeconfig with many contexts is well under).
pub const MAX_FILE: u64 = 4 * 1024 * 1024;

/// Reads a regular file of at most [`MAX_FILE`] bytes. Symbolic links are followed (a
/// mounted Secret's files are links into its `..data` directory).
pub fn read(path: &Path) -> io::Result<Vec<u8>> {
    // Checked before opening: opening a FIFO would block.
    if !std::fs::metadata(path)?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_FILE + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {MAX_FILE} bytes"),
        ));
    }
    Ok(bytes)
}

/// [`read`], as UTF-8 text.
pub fn read_to_string(path: &Path) -> io::Result<String> {
    String::from_utf8(read(path)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_and_directories_are_refused_without_reading_them() {
        for path in ["/dev/zero", "/dev/null", "/tmp"] {
            let err = read(Path::new(path)).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{path}");
        }
        assert_eq!(
            read(Path::new("/nonexistent/file")).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }

    #[test]
    fn a_file_over_the_limit_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(MAX_FILE + 1)
            .unwrap();
        assert_eq!(read(&big).unwrap_err().kind(), io::ErrorKind::InvalidData);
        let ok = dir.path().join("ok");
        std::fs::write(&ok, b"token").unwrap();
        assert_eq!(read_to_string(&ok).unwrap(), "token");
    }
}
