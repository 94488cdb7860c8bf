//! The TLS files a broker URL carries on this host: a private CA to trust and a client
//! certificate to present. Plain data, read and checked by `io::broker::trust` before
//! any connection; held beside the URL (not in its text, never recorded in the log)
//! so every transport sees the same trust without another parameter.

use std::fmt;
use std::path::{Path, PathBuf};

/// The certificates (PEM) of a CA file, with the file's name for messages. Not secret
/// (certificates are public), but `Debug` shows the path only, to keep logs short.
#[derive(Clone, PartialEq, Eq)]
pub struct CaFile {
    path: PathBuf,
    pem: String,
}

impl CaFile {
    /// Holds certificates already read from `path` and checked.
    pub fn new(path: &Path, pem: String) -> CaFile {
        CaFile { path: path.to_path_buf(), pem }
    }

    /// The file it was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The certificates, PEM as read.
    pub fn pem(&self) -> &str {
        &self.pem
    }
}

impl fmt::Debug for CaFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CaFile({})", self.path.display())
    }
}

/// A client certificate (chain, PEM) and its private key (PEM). The key is a secret:
/// `Debug` shows the certificate's path only.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientCert {
    cert_path: PathBuf,
    cert_pem: String,
    key_pem: String,
}

impl ClientCert {
    /// Holds a certificate and key already read and checked.
    pub fn new(cert_path: &Path, cert_pem: String, key_pem: String) -> ClientCert {
        ClientCert { cert_path: cert_path.to_path_buf(), cert_pem, key_pem }
    }

    /// The certificate file.
    pub fn path(&self) -> &Path {
        &self.cert_path
    }

    /// The certificate chain, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The private key, PEM (for the TLS handshake only).
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }
}

impl fmt::Debug for ClientCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientCert({}, key ***)", self.cert_path.display())
    }
}
