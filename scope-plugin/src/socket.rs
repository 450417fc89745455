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
pub(crate) enum SocketError {
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
    /// The path is too long for a unix socket.
    #[error(
        "{path} is {length} bytes; unix socket paths are limited to 107: pass a shorter --socket or --plugins-root"
    )]
    TooLong {
        /// The socket path.
        path: PathBuf,
        /// Its length in bytes.
        length: usize,
    },
    /// A path on the way to the socket exists but is not a directory.
    #[error(
        "{0} is a file, not a directory: the socket's directory and the plugins root must be directories"
    )]
    NotADirectory(PathBuf),
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

pub(crate) use scope_plugin_rules::plugin_id_from_path;

/// The default socket path: `<root>/<id>/<id>.sock` (one private directory per plugin).
pub(crate) fn default_socket_path(plugins_root: &Path, plugin_id: &str) -> PathBuf {
    plugins_root
        .join(plugin_id)
        .join(format!("{plugin_id}.sock"))
}

/// Our bound socket; dropping it removes what we own.
#[derive(Debug)]
pub(crate) struct BoundSocket {
    path: PathBuf,
    inode: (u64, u64),
    created_dir: Option<PathBuf>,
}

impl BoundSocket {
    /// The socket path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

/// The longest unix socket path: `sun_path` holds 108 bytes, the last one a NUL.
const MAX_SOCKET_PATH: usize = 107;

/// Binds `path` for plugin `plugin_id`, replacing a stale socket and refusing a live one.
///
/// Everything that can be checked is checked before anything is created, and on failure
/// whatever this call created is removed again.
pub(crate) fn bind(
    path: &Path,
    plugin_id: &str,
) -> Result<(UnixListener, BoundSocket), SocketError> {
    let derived = plugin_id_from_path(path).unwrap_or_default();
    if derived != plugin_id {
        return Err(SocketError::IdMismatch {
            path: path.to_owned(),
            derived,
            expected: plugin_id.to_owned(),
        });
    }
    if path.as_os_str().len() > MAX_SOCKET_PATH {
        return Err(SocketError::TooLong {
            path: path.to_owned(),
            length: path.as_os_str().len(),
        });
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let created = create_directories(&missing_directories(dir)?)?;
    let bound = remove_if_stale(path).and_then(|()| {
        UnixListener::bind(path).map_err(|source| SocketError::Io {
            action: "bind",
            path: path.to_owned(),
            source,
        })
    });
    let listener = match bound {
        Ok(listener) => listener,
        Err(error) => {
            remove_directories(&created);
            return Err(error);
        }
    };
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
            // Only the socket's own directory, if we made it: a plugins root we created
            // stays for the probe (Scope mounts it only if it exists).
            created_dir: created.last().filter(|last| *last == dir).cloned(),
        },
    ))
}

/// The directories from the first missing ancestor of `dir` down to `dir` (empty if `dir`
/// exists). Fails, creating nothing, if an ancestor exists but is not a directory.
fn missing_directories(dir: &Path) -> Result<Vec<PathBuf>, SocketError> {
    let mut missing = Vec::new();
    for ancestor in dir.ancestors().filter(|a| !a.as_os_str().is_empty()) {
        match std::fs::metadata(ancestor) {
            Ok(meta) if meta.is_dir() => break,
            Ok(_) => return Err(SocketError::NotADirectory(ancestor.to_owned())),
            // NotADirectory: an ancestor is a file; the walk up finds and names it.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                missing.push(ancestor.to_owned());
            }
            Err(source) => {
                return Err(SocketError::Io {
                    action: "inspect",
                    path: ancestor.to_owned(),
                    source,
                });
            }
        }
    }
    missing.reverse();
    Ok(missing)
}

/// Creates `dirs` in order: the last, the socket's own directory, private (0700), the
/// others 0755. Returns those it made; on failure removes them again.
fn create_directories(dirs: &[PathBuf]) -> Result<Vec<PathBuf>, SocketError> {
    let mut created = Vec::new();
    for (index, dir) in dirs.iter().enumerate() {
        let mode = if index + 1 == dirs.len() {
            0o700
        } else {
            0o755
        };
        match std::fs::DirBuilder::new().mode(mode).create(dir) {
            Ok(()) => created.push(dir.clone()),
            // Another instance made it between our check and now: fine, and not ours.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => {}
            Err(source) => {
                remove_directories(&created);
                return Err(SocketError::CreateDir {
                    path: dir.clone(),
                    source,
                });
            }
        }
    }
    Ok(created)
}

/// Removes `dirs` innermost first, each only if empty.
fn remove_directories(dirs: &[PathBuf]) {
    for dir in dirs.iter().rev() {
        let _ = std::fs::remove_dir(dir);
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
