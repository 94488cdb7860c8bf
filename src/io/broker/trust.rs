//! Whom a TLS broker connection (`rediss://`, `amqps://`) trusts: the system's
//! certificate store by default, or the certificates of a CA file an operator names
//! (`--broker-ca-file`, else [`CA_FILE_ENV`]) for a broker whose certificate a private
//! CA signed. The file is read and checked once, before any connection, so a wrong
//! path or a file that is not a certificate is a clear error at start rather than a
//! handshake failure that names no file.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::io::broker::url::{BrokerUrl, UrlError};

/// The environment variable naming a CA file (PEM), when no `--broker-ca-file` is given.
pub const CA_FILE_ENV: &str = "PITBOSS_BROKER_CA_FILE";

/// The certificates (PEM) of a CA file, with the file's name for messages. Not secret
/// (certificates are public), but `Debug` shows the path only, to keep logs short.
#[derive(Clone, PartialEq, Eq)]
pub struct CaFile {
    path: PathBuf,
    pem: String,
}

impl CaFile {
    /// Reads and checks `path`: readable, PEM, at least one certificate.
    pub fn read(path: &Path) -> Result<CaFile, UrlError> {
        let bad = |reason: String| UrlError::CaFile { path: path.to_path_buf(), reason };
        let pem = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        match count_certificates(&pem) {
            Ok(0) => Err(bad("it holds no certificate (-----BEGIN CERTIFICATE-----)".into())),
            Ok(_) => Ok(CaFile { path: path.to_path_buf(), pem }),
            Err(reason) => Err(bad(reason)),
        }
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

/// The CA file for `url`: `flag` (`--broker-ca-file`), else [`CA_FILE_ENV`], else none
/// (the system's store). Refused with a plain URL when given by flag (the operator
/// likely meant `rediss://`/`amqps://`); the variable is ignored then, as it may be
/// set for every broker on a host.
pub fn ca_file(url: &BrokerUrl, flag: Option<&Path>) -> Result<Option<CaFile>, UrlError> {
    ca_file_from(url, std::env::var_os(CA_FILE_ENV), flag)
}

/// [`ca_file`] with the environment's value given (for tests).
pub fn ca_file_from(url: &BrokerUrl, env: Option<OsString>, flag: Option<&Path>) -> Result<Option<CaFile>, UrlError> {
    if !url.tls {
        return match flag {
            Some(_) => Err(UrlError::CaWithoutTls { url: url.to_string() }),
            None => Ok(None),
        };
    }
    let env = env.filter(|v| !v.is_empty()).map(PathBuf::from);
    match flag.map(Path::to_path_buf).or(env) {
        Some(path) => CaFile::read(&path).map(Some),
        None => Ok(None),
    }
}

/// `reason` (a connection error's words) with what to do when it is TLS refusing the
/// broker's certificate as signed by an unknown CA; `ca` is the file trusted, if any.
pub fn hint(reason: String, ca: Option<&Path>) -> String {
    if !reason.contains("UnknownIssuer") {
        return reason;
    }
    match ca {
        Some(path) => format!("{reason}: the broker's certificate is not signed by the CA in {}", path.display()),
        None => format!(
            "{reason}: the broker's certificate is not signed by a CA this host trusts; \
             name its CA with --broker-ca-file or {CA_FILE_ENV}"
        ),
    }
}

/// How many certificates the PEM text holds; Err when a block does not decode.
#[cfg(feature = "tls")]
fn count_certificates(pem: &str) -> Result<usize, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .try_fold(0, |n, cert| cert.map(|_| n + 1))
        .map_err(|e| format!("it is not PEM certificates: {e}"))
}

/// Without TLS no CA file is ever used (TLS URLs are refused); count the markers.
#[cfg(not(feature = "tls"))]
fn count_certificates(pem: &str) -> Result<usize, String> {
    Ok(pem.matches("-----BEGIN CERTIFICATE-----").count())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOT_A_CERT: &str = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";

    fn url(text: &str) -> BrokerUrl {
        BrokerUrl::parse(text).unwrap()
    }

    #[test]
    fn no_file_means_the_system_store() {
        assert_eq!(ca_file_from(&url("rediss://h"), None, None).unwrap(), None);
        assert_eq!(ca_file_from(&url("rediss://h"), Some("".into()), None).unwrap(), None);
    }

    #[test]
    fn a_plain_url_refuses_the_flag_and_ignores_the_variable() {
        let err = ca_file_from(&url("redis://h"), None, Some(Path::new("/x/ca.pem"))).unwrap_err();
        assert!(err.to_string().contains("rediss://"), "{err}");
        assert_eq!(ca_file_from(&url("amqp://h"), Some("/x/ca.pem".into()), None).unwrap(), None);
    }

    #[test]
    fn a_missing_or_wrong_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        let err = ca_file_from(&url("rediss://h"), Some(missing.clone().into()), None).unwrap_err();
        assert!(err.to_string().contains("nope.pem"), "{err}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "hello\n").unwrap();
        let err = ca_file_from(&url("amqps://h"), None, Some(&empty)).unwrap_err();
        assert!(err.to_string().contains("empty.pem") && err.to_string().contains("no certificate"), "{err}");
        #[cfg(feature = "tls")]
        {
            let garbled = dir.path().join("garbled.pem");
            std::fs::write(&garbled, NOT_A_CERT).unwrap();
            let err = ca_file_from(&url("amqps://h"), None, Some(&garbled)).unwrap_err();
            assert!(err.to_string().contains("garbled.pem"), "{err}");
        }
    }

    #[test]
    fn an_unknown_issuer_says_where_trust_comes_from() {
        let words = "invalid peer certificate: UnknownIssuer".to_string();
        assert!(hint(words.clone(), None).contains(CA_FILE_ENV));
        assert!(hint(words, Some(Path::new("/etc/ca.pem"))).ends_with("not signed by the CA in /etc/ca.pem"));
        assert_eq!(hint("timed out".into(), None), "timed out");
    }

    #[test]
    fn the_flag_wins_over_the_variable() {
        let dir = tempfile::tempdir().unwrap();
        let other = dir.path().join("other.pem");
        let err = ca_file_from(&url("rediss://h"), Some("/env/ca.pem".into()), Some(&other)).unwrap_err();
        assert!(err.to_string().contains("other.pem"), "{err}");
        let _ = NOT_A_CERT;
    }
}
