//! mTLS device identity: the rustls client-certificate verifier for the configured device CA,
//! reading the device id from a verified leaf certificate (subject CN as Entra device
//! certificates carry it, or a SAN URI `urn:device:<id>`), and reconciling it with the token.

use std::path::Path;
use std::sync::Arc;

use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

pub use crate::config::identity::MtlsMode;

use super::{IdentityError, IdentityFailure};
use crate::ids::DeviceId;
use crate::reason::ReasonCode;

/// The client-certificate verifier for a listener: `None` for `Off`; for `Optional` a
/// connection without a certificate is accepted (a bad certificate is still refused).
pub fn client_verifier(
    ca_pem_path: &Path,
    mode: MtlsMode,
) -> Result<Option<Arc<dyn ClientCertVerifier>>, IdentityError> {
    if mode == MtlsMode::Off {
        return Ok(None);
    }
    let err = |message: String| IdentityError::DeviceCa {
        path: ca_pem_path.to_owned(),
        message,
    };
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca_pem_path)
        .map_err(|e| err(format!("cannot read PEM: {e}")))?;
    for (index, cert) in certs.enumerate() {
        let cert = cert.map_err(|e| err(format!("certificate [{index}]: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| err(format!("certificate [{index}]: {e}")))?;
    }
    if roots.is_empty() {
        return Err(err("no CERTIFICATE in the file".into()));
    }
    let builder = WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::ring::default_provider()),
    );
    let builder = match mode {
        MtlsMode::Optional => builder.allow_unauthenticated(),
        _ => builder,
    };
    builder
        .build()
        .map(Some)
        .map_err(|e| err(format!("verifier: {e}")))
}

/// The device id a certificate names: SAN URI `urn:device:<GUID>` or a subject CN that is a
/// GUID. `None` when it names none, or two different ones.
pub fn device_id_from_cert(der: &[u8]) -> Option<DeviceId> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let from_san = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .and_then(|san| {
            san.value.general_names.iter().find_map(|name| match name {
                GeneralName::URI(uri) => uri
                    .strip_prefix("urn:device:")
                    .and_then(|id| DeviceId::parse(id).ok()),
                _ => None,
            })
        });
    let from_cn = cert
        .subject()
        .iter_common_name()
        .find_map(|cn| cn.as_str().ok().and_then(|s| DeviceId::parse(s).ok()));
    match (from_san, from_cn) {
        (Some(a), Some(b)) if a != b => None,
        (a, b) => a.or(b),
    }
}

/// The device of a connection from its (already verified) peer certificates: `Ok(None)`
/// without a certificate, `certificate_invalid` when the leaf names no device.
pub fn device_from_peer_certificates(
    certs: Option<&[CertificateDer<'_>]>,
) -> Result<Option<DeviceId>, IdentityFailure> {
    let Some(leaf) = certs.and_then(|c| c.first()) else {
        return Ok(None);
    };
    device_id_from_cert(leaf).map(Some).ok_or_else(|| {
        IdentityFailure::new(
            ReasonCode::CertificateInvalid,
            "client certificate names no device id",
        )
    })
}

/// Combines the token's `deviceid` with the certificate's device: both present must agree.
pub fn resolve_device(
    token_device: Option<DeviceId>,
    cert_device: Option<DeviceId>,
) -> Result<Option<DeviceId>, ReasonCode> {
    match (token_device, cert_device) {
        (Some(t), Some(c)) if t != c => Err(ReasonCode::DeviceMismatch),
        (t, c) => Ok(t.or(c)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::testing::{DeviceName, TestCa};

    fn dev(n: u128) -> DeviceId {
        DeviceId::from_u128(n).unwrap()
    }

    fn check(token: Option<u128>, cert: Option<u128>, expected: Result<Option<u128>, ReasonCode>) {
        let got = resolve_device(token.map(dev), cert.map(dev));
        assert_eq!(got, expected.map(|d| d.map(dev)), "{token:?} {cert:?}");
    }

    #[test]
    fn resolves_token_and_certificate_devices() {
        check(None, None, Ok(None));
        check(Some(1), None, Ok(Some(1)));
        check(None, Some(2), Ok(Some(2)));
        check(Some(3), Some(3), Ok(Some(3)));
        check(Some(1), Some(2), Err(ReasonCode::DeviceMismatch));
    }

    #[test]
    fn reads_device_id_from_cn_or_san_uri() {
        let ca = TestCa::new("Device CA");
        let d = dev(0xabc);
        let cn = ca.device_cert(d, DeviceName::CommonName, false);
        let san = ca.device_cert(d, DeviceName::SanUri, false);
        let none = ca.device_cert(d, DeviceName::Neither, false);
        assert_eq!(device_id_from_cert(&cn.cert_der), Some(d));
        assert_eq!(device_id_from_cert(&san.cert_der), Some(d));
        assert_eq!(device_id_from_cert(&none.cert_der), None);
        assert_eq!(device_id_from_cert(b"\x30\x03garbage"), None);
        assert_eq!(device_from_peer_certificates(None), Ok(None));
        let leaf = [none.cert_der.clone()];
        assert_eq!(
            device_from_peer_certificates(Some(&leaf)).map_err(|f| f.reason),
            Err(ReasonCode::CertificateInvalid)
        );
    }

    #[test]
    fn verifier_config_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        assert!(client_verifier(&path, MtlsMode::Off).is_ok_and(|v| v.is_none()));
        assert!(client_verifier(&path, MtlsMode::Required)
            .is_err_and(|e| e.to_string().contains("ca.pem")));
        std::fs::write(&path, "no pem here").unwrap();
        assert!(client_verifier(&path, MtlsMode::Required).is_err());
        std::fs::write(&path, TestCa::new("CA").pem()).unwrap();
        assert!(client_verifier(&path, MtlsMode::Optional).is_ok_and(|v| v.is_some()));
    }
}
