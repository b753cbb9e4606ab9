//! How the store connects: the database URL read into tokio-postgres's settings and a
//! rustls connector that checks the server's certificate as libpq's `sslmode` says.
//!
//! tokio-postgres knows `sslmode` `disable`, `prefer` and `require` only, and neither
//! `sslrootcert` nor certificate checks (those are the TLS connector's). So the store
//! takes `sslmode` and `sslrootcert` out of the URL, hands the rest to tokio-postgres,
//! and sets the mode and the connector itself:
//!
//! | `sslmode`          | TLS                      | certificate checked                  |
//! |--------------------|--------------------------|--------------------------------------|
//! | `disable`          | never                    | —                                    |
//! | `prefer` (default) | if the server offers it  | with `sslrootcert` only: the chain   |
//! | `require`          | always                   | with `sslrootcert` only: the chain   |
//! | `verify-ca`        | always                   | the chain                            |
//! | `verify-full`      | always                   | the chain and the host name          |
//!
//! The chain is checked against `sslrootcert=PATH` (PEM) or, without it, against the
//! operating system's trust store (also `sslrootcert=system`, which, as in libpq, asks
//! for `verify-full` and is its default mode). One difference from libpq: with `prefer`,
//! a failed handshake is an error, where libpq would try again in plain text.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use percent_encoding::percent_decode_str;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_cert_signed_by_trust_anchor, verify_server_name};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres::config::SslMode as Negotiation;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::store::StoreError;

/// libpq's `sslmode`, as far as this store honours it (`allow` is refused: tokio-postgres
/// cannot try plain text first and TLS second).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    /// The mode a URL's `sslmode` value names.
    fn parse(value: &str) -> Result<SslMode, StoreError> {
        match value {
            "disable" => Ok(SslMode::Disable),
            "prefer" => Ok(SslMode::Prefer),
            "require" => Ok(SslMode::Require),
            "verify-ca" => Ok(SslMode::VerifyCa),
            "verify-full" => Ok(SslMode::VerifyFull),
            "allow" => Err(StoreError::new(
                "the database URL: sslmode=allow is not supported (it tries plain text \
                 before TLS); use prefer, require or disable",
            )),
            other => Err(StoreError::new(format!(
                "the database URL: sslmode must be disable, prefer, require, verify-ca or \
                 verify-full, not {other:?}"
            ))),
        }
    }

    /// Whether tokio-postgres asks for TLS, and whether it may go on without.
    fn negotiation(self) -> Negotiation {
        match self {
            SslMode::Disable => Negotiation::Disable,
            SslMode::Prefer => Negotiation::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => Negotiation::Require,
        }
    }

    fn name(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// Where the trusted root certificates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Roots {
    /// No check of the server's certificate.
    Unchecked,
    /// A PEM file (`sslrootcert=PATH`).
    File(PathBuf),
    /// The operating system's trust store.
    System,
}

/// What the URL asks of TLS: read from it before tokio-postgres reads the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TlsSettings {
    mode: SslMode,
    roots: Roots,
}

impl TlsSettings {
    /// How the store connects, for error messages: the mode and the roots.
    pub(super) fn describe(&self) -> String {
        let roots = match &self.roots {
            Roots::Unchecked if self.mode == SslMode::Disable => return "sslmode=disable".into(),
            Roots::Unchecked => "server certificate not checked".to_owned(),
            Roots::File(path) => format!("root certificates from {}", path.display()),
            Roots::System => "the system's root certificates".to_owned(),
        };
        format!("sslmode={}, {roots}", self.mode.name())
    }
}

/// The settings of a connection: tokio-postgres's and the TLS connector.
pub(super) struct Connection {
    pub(super) config: tokio_postgres::Config,
    pub(super) tls: MakeRustlsConnect,
    pub(super) settings: TlsSettings,
}

/// Checks a `postgres://` URL as [`connection`] reads it, without reading certificates
/// or connecting: a bad `sslmode` is a configuration error, found before anything starts.
pub(super) fn check(url: &str) -> Result<(), StoreError> {
    let (rest, _) = split_url(url)?;
    rest.parse::<tokio_postgres::Config>()
        .map(drop)
        .map_err(|e| super::connect_error("the database URL".into(), &e))
}

/// Reads a `postgres://` URL: its TLS parameters here, the rest by tokio-postgres, and
/// builds the connector (reading the root certificates once).
pub(super) fn connection(url: &str) -> Result<Connection, StoreError> {
    let (rest, settings) = split_url(url)?;
    let mut config: tokio_postgres::Config = rest
        .parse()
        .map_err(|e| super::connect_error("the database URL".into(), &e))?;
    config.ssl_mode(settings.mode.negotiation());
    let tls = connector(&settings)?;
    Ok(Connection {
        config,
        tls,
        settings,
    })
}

/// Takes `sslmode` and `sslrootcert` out of a `postgres://` URL: returns the URL without
/// them and what they ask for.
fn split_url(url: &str) -> Result<(String, TlsSettings), StoreError> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(StoreError::new(
            "the database URL must start with postgres:// or postgresql://",
        ));
    }
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut mode = None;
    let mut rootcert = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        // Repeated, the last one counts, as with tokio-postgres's own parameters.
        match decode(key)?.as_str() {
            "sslmode" => mode = Some(SslMode::parse(&decode(value)?)?),
            "sslrootcert" => rootcert = Some(decode(value)?),
            _ => kept.push(pair),
        }
    }
    let rest = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((rest, settings(mode, rootcert)?))
}

/// libpq's rules for `sslmode` and `sslrootcert` together.
fn settings(mode: Option<SslMode>, rootcert: Option<String>) -> Result<TlsSettings, StoreError> {
    let system = rootcert.as_deref() == Some("system");
    // As in libpq: `sslrootcert=system` makes verify-full the default and the only mode.
    let mode = mode.unwrap_or(if system {
        SslMode::VerifyFull
    } else {
        SslMode::Prefer
    });
    if system && mode != SslMode::VerifyFull {
        return Err(StoreError::new(format!(
            "the database URL: sslrootcert=system needs sslmode=verify-full, not {}",
            mode.name()
        )));
    }
    let roots = match (mode, rootcert) {
        (SslMode::Disable, _) => Roots::Unchecked,
        (_, Some(path)) if path.is_empty() => {
            return Err(StoreError::new("the database URL: sslrootcert is empty"))
        }
        (_, Some(_)) if system => Roots::System,
        // As in libpq, a root certificate makes prefer and require check the chain too.
        (_, Some(path)) => Roots::File(PathBuf::from(path)),
        (SslMode::VerifyCa | SslMode::VerifyFull, None) => Roots::System,
        (SslMode::Prefer | SslMode::Require, None) => Roots::Unchecked,
    };
    Ok(TlsSettings { mode, roots })
}

/// A URL component with its `%XX` escapes decoded.
fn decode(text: &str) -> Result<String, StoreError> {
    percent_decode_str(text)
        .decode_utf8()
        .map(|text| text.into_owned())
        .map_err(|e| StoreError::with_source("the database URL: a parameter is not UTF-8", e))
}

/// The rustls connector for `settings`: ring, TLS 1.2 and 1.3, and a [`Verifier`].
fn connector(settings: &TlsSettings) -> Result<MakeRustlsConnect, StoreError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = match &settings.roots {
        Roots::Unchecked => None,
        Roots::File(path) => Some(Arc::new(file_roots(path)?)),
        Roots::System => Some(Arc::new(system_roots()?)),
    };
    let verifier = Verifier {
        roots,
        check_name: settings.mode == SslMode::VerifyFull,
        provider: Arc::clone(&provider),
    };
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::with_source("setting up TLS", e))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// The certificates of a PEM file, every one a trusted root.
fn file_roots(path: &Path) -> Result<RootCertStore, StoreError> {
    let what = || format!("reading sslrootcert {}", path.display());
    let mut roots = RootCertStore::empty();
    let certs =
        CertificateDer::pem_file_iter(path).map_err(|e| StoreError::with_source(what(), e))?;
    for cert in certs {
        let cert = cert.map_err(|e| StoreError::with_source(what(), e))?;
        roots
            .add(cert)
            .map_err(|e| StoreError::with_source(what(), e))?;
    }
    if roots.is_empty() {
        return Err(StoreError::new(format!(
            "sslrootcert {} holds no PEM certificate",
            path.display()
        )));
    }
    Ok(roots)
}

/// The operating system's trusted roots (`SSL_CERT_FILE` and `SSL_CERT_DIR` move them).
fn system_roots() -> Result<RootCertStore, StoreError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    // Large stores often hold a few certificates rustls cannot use: skipped.
    roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        let why = found
            .errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        return Err(StoreError::new(format!(
            "no usable root certificate in the system's trust store ({why}); give \
             sslrootcert=PATH in the database URL"
        )));
    }
    Ok(roots)
}

/// Checks the server's certificate as the mode says: not at all, the chain to `roots`,
/// or the chain and the host name. The handshake's signatures are always checked, so the
/// server holds the key of the certificate it showed (what channel binding relies on).
#[derive(Debug)]
struct Verifier {
    /// `None`: the certificate is not checked.
    roots: Option<Arc<RootCertStore>>,
    check_name: bool,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(roots) = &self.roots else {
            return Ok(ServerCertVerified::assertion());
        };
        let cert = ParsedCertificate::try_from(end_entity)?;
        verify_server_cert_signed_by_trust_anchor(
            &cert,
            roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        if self.check_name {
            verify_server_name(&cert, server_name)?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode_and_roots(url: &str) -> Result<(String, SslMode, Roots), String> {
        split_url(url)
            .map(|(rest, s)| (rest, s.mode, s.roots))
            .map_err(|e| e.to_string())
    }

    /// What the URL's TLS parameters mean, and the URL left for tokio-postgres.
    #[test]
    fn reads_sslmode_and_sslrootcert_as_libpq_does() {
        use Roots::{File, System, Unchecked};
        use SslMode::*;
        let base = "postgres://u:p@db:5432/jobs";
        let file = || File(PathBuf::from("/etc/ca.pem"));
        // The URL's query, what is left of it for tokio-postgres, the mode, the roots.
        let cases: &[(&str, &str, SslMode, Roots)] = &[
            ("", "", Prefer, Unchecked),
            (
                "?connect_timeout=3",
                "?connect_timeout=3",
                Prefer,
                Unchecked,
            ),
            ("?sslmode=disable", "", Disable, Unchecked),
            (
                "?sslmode=disable&sslrootcert=/etc/ca.pem",
                "",
                Disable,
                Unchecked,
            ),
            ("?sslmode=prefer", "", Prefer, Unchecked),
            (
                "?sslmode=prefer&sslrootcert=/etc/ca.pem",
                "",
                Prefer,
                file(),
            ),
            ("?sslmode=require", "", Require, Unchecked),
            (
                "?sslmode=require&sslrootcert=/etc/ca.pem",
                "",
                Require,
                file(),
            ),
            ("?sslmode=verify-ca", "", VerifyCa, System),
            (
                "?sslmode=verify-ca&sslrootcert=/etc/ca.pem",
                "",
                VerifyCa,
                file(),
            ),
            ("?sslmode=verify-full", "", VerifyFull, System),
            ("?sslrootcert=system", "", VerifyFull, System),
            (
                "?sslmode=verify-full&sslrootcert=system",
                "",
                VerifyFull,
                System,
            ),
            // Keys and values percent-decoded; the other parameters kept as they were.
            (
                "?application_name=a%20b&ssl%6Dode=verify-full&sslrootcert=%2Fetc%2Fca.pem&port=1",
                "?application_name=a%20b&port=1",
                VerifyFull,
                file(),
            ),
            // Repeated: the last counts.
            ("?sslmode=disable&sslmode=require", "", Require, Unchecked),
        ];
        for (query, rest, mode, roots) in cases {
            let url = format!("{base}{query}");
            let expected = (format!("{base}{rest}"), *mode, roots.clone());
            assert_eq!(mode_and_roots(&url), Ok(expected), "{url}");
        }
    }

    /// A bad sslmode, or a combination libpq refuses, is an error that says which.
    #[test]
    fn refuses_bad_tls_parameters_clearly() {
        let cases = [
            (
                "postgres://db/x?sslmode=verify_full",
                "sslmode must be disable, prefer",
            ),
            ("postgres://db/x?sslmode=", "not \"\""),
            (
                "postgres://db/x?sslmode=allow",
                "sslmode=allow is not supported",
            ),
            (
                "postgres://db/x?sslmode=require&sslrootcert=system",
                "sslrootcert=system needs sslmode=verify-full, not require",
            ),
            ("postgres://db/x?sslrootcert=", "sslrootcert is empty"),
            ("postgres://db/x?sslmode=%FF", "not UTF-8"),
            ("host=db sslmode=require", "must start with postgres://"),
        ];
        for (url, expected) in cases {
            let error = mode_and_roots(url).unwrap_err();
            assert!(error.contains(expected), "{url}: {error}");
            assert!(
                !error.contains("db/x"),
                "{url}: the URL is not echoed: {error}"
            );
        }
    }

    /// The root certificate file is read when the store connects: a missing or empty
    /// file is a clear error naming it.
    #[test]
    fn a_missing_or_empty_root_certificate_file_is_named() {
        let dir = std::env::temp_dir().join(format!("jwtls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let missing = dir.join("missing.pem");
        for (path, expected) in [
            (
                &missing,
                format!("reading sslrootcert {}", missing.display()),
            ),
            (
                &empty,
                format!("sslrootcert {} holds no PEM certificate", empty.display()),
            ),
        ] {
            let url = format!(
                "postgres://db/x?sslmode=verify-full&sslrootcert={}",
                path.display()
            );
            let error = connection(&url).err().map(|e| e.to_string());
            let error = error.unwrap_or_default();
            assert!(error.contains(&expected), "{error}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn describes_the_mode_and_the_roots() {
        let describe = |url: &str| split_url(url).unwrap().1.describe();
        assert_eq!(
            describe("postgres://db/x?sslmode=disable"),
            "sslmode=disable"
        );
        assert_eq!(
            describe("postgres://db/x"),
            "sslmode=prefer, server certificate not checked"
        );
        assert_eq!(
            describe("postgres://db/x?sslmode=verify-ca&sslrootcert=/r.pem"),
            "sslmode=verify-ca, root certificates from /r.pem"
        );
        assert_eq!(
            describe("postgres://db/x?sslmode=verify-full"),
            "sslmode=verify-full, the system's root certificates"
        );
    }
}
