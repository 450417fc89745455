//! The plugin's unix socket: where it goes, what may be replaced, what is cleaned up.
//!
//! We own exactly two things on disk: our socket file and, if we made it, our private
//! directory. A stale socket (nothing listening) is replaced; a live one belongs to another
//! instance and is left alone. On exit we remove our socket only if it is still ours
//! (same inode), and our directory only if we created it and it is empty.

use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use tokio::net::UnixListener;

/// Why the socket could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// Another process answers on the socket.
    #[error(
        "another plugin instance is serving on {0} (it accepted a connection); stop it first, or pass --socket with another path"
    )]
    Live(PathBuf),
    /// Something that is not a socket sits at the path.
    #[error(
        "{0} exists and is not a socket; refusing to delete it: remove it yourself or pass --socket"
    )]
    NotASocket(PathBuf),
    /// The socket's file name gives an id the probe rejects or one other than the plugin's.
    #[error(
        "the probe derives the plugin id {derived:?} from {path} (file name minus its extension), but this plugin's id is {expected:?}; name the socket {expected}.sock"
    )]
    IdMismatch {
        /// The socket path.
        path: PathBuf,
        /// What the probe would derive.
        derived: String,
        /// The plugin's id.
        expected: String,
    },
    /// A directory could not be created.
    #[error("cannot create directory {path}: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The path could not be inspected, bound or cleaned.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What we tried.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

/// The id the probe derives from a socket path: the file name minus its last extension.
pub fn plugin_id_from_path(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    // Go's filepath.Ext: the suffix from the last '.', even for a leading dot.
    Some(match name.rfind('.') {
        Some(dot) => name[..dot].to_owned(),
        None => name.to_owned(),
    })
}

/// The default socket path: `<root>/<id>/<id>.sock` (one private directory per plugin).
pub fn default_socket_path(plugins_root: &Path, plugin_id: &str) -> PathBuf {
    plugins_root
        .join(plugin_id)
        .join(format!("{plugin_id}.sock"))
}

/// Our bound socket; dropping it removes what we own.
#[derive(Debug)]
pub struct BoundSocket {
    path: PathBuf,
    inode: (u64, u64),
    created_dir: Option<PathBuf>,
}

impl BoundSocket {
    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Binds `path` for plugin `plugin_id`, replacing a stale socket and refusing a live one.
pub fn bind(path: &Path, plugin_id: &str) -> Result<(UnixListener, BoundSocket), SocketError> {
    let derived = plugin_id_from_path(path).unwrap_or_default();
    if derived != plugin_id {
        return Err(SocketError::IdMismatch {
            path: path.to_owned(),
            derived,
            expected: plugin_id.to_owned(),
        });
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let created_dir = create_private_dir(dir)?;
    remove_if_stale(path)?;
    let listener = UnixListener::bind(path).map_err(|source| {
        let source = if path.as_os_str().len() >= 108 {
            io::Error::new(
                source.kind(),
                format!("{source} (unix socket paths are limited to 107 bytes)"),
            )
        } else {
            source
        };
        SocketError::Io {
            action: "bind",
            path: path.to_owned(),
            source,
        }
    })?;
    let meta = std::fs::symlink_metadata(path).map_err(|source| SocketError::Io {
        action: "inspect",
        path: path.to_owned(),
        source,
    })?;
    Ok((
        listener,
        BoundSocket {
            path: path.to_owned(),
            inode: (meta.dev(), meta.ino()),
            created_dir,
        },
    ))
}

/// Creates `dir` (0700) if missing, and its parents (0755) as needed. Returns `dir` if we
/// created it, so we may remove it on exit.
fn create_private_dir(dir: &Path) -> Result<Option<PathBuf>, SocketError> {
    if dir.is_dir() {
        return Ok(None);
    }
    if let Some(parent) = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty() && !p.is_dir())
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent)
            .map_err(|source| SocketError::CreateDir {
                path: parent.to_owned(),
                source,
            })?;
    }
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => Ok(Some(dir.to_owned())),
        // Another instance made it between our check and now: not ours.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(None),
        Err(source) => Err(SocketError::CreateDir {
            path: dir.to_owned(),
            source,
        }),
    }
}

fn remove_if_stale(path: &Path) -> Result<(), SocketError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(SocketError::Io {
                action: "inspect",
                path: path.to_owned(),
                source,
            });
        }
    };
    if !meta.file_type().is_socket() {
        return Err(SocketError::NotASocket(path.to_owned()));
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(SocketError::Live(path.to_owned())),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            tracing::info!(path = %path.display(), "replacing stale socket (nothing was listening)");
            std::fs::remove_file(path).map_err(|source| SocketError::Io {
                action: "remove stale socket",
                path: path.to_owned(),
                source,
            })
        }
        Err(source) => Err(SocketError::Io {
            action: "probe existing socket",
            path: path.to_owned(),
            source,
        }),
    }
}

impl Drop for BoundSocket {
    fn drop(&mut self) {
        let still_ours = std::fs::symlink_metadata(&self.path)
            .map(|meta| (meta.dev(), meta.ino()) == self.inode)
            .unwrap_or(false);
        if still_ours {
            match std::fs::remove_file(&self.path) {
                Ok(()) => tracing::info!(path = %self.path.display(), "removed socket"),
                Err(error) => {
                    tracing::warn!(path = %self.path.display(), %error, "could not remove socket")
                }
            }
        }
        if let Some(dir) = &self.created_dir {
            // remove_dir refuses non-empty directories, which is what we want.
            let _ = std::fs::remove_dir(dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_from_paths_like_the_probe() {
        let id = |p: &str| plugin_id_from_path(Path::new(p));
        assert_eq!(id("/r/a.sock").as_deref(), Some("a"));
        assert_eq!(id("/r/b.socket").as_deref(), Some("b"));
        assert_eq!(id("/r/noext").as_deref(), Some("noext"));
        assert_eq!(id("/r/c.d.sock").as_deref(), Some("c.d"));
        assert_eq!(id("/r/.hidden").as_deref(), Some(""));
    }
}
