//! mTLS device certificates over a real rustls handshake (tokio-rustls client and server on
//! 127.0.0.1:0): good, expired, other-CA and no certificate, in optional and required modes.

use std::sync::Arc;

use portcullis::identity::mtls::{client_verifier, device_from_peer_certificates, MtlsMode};
use portcullis::identity::testing::{DeviceName, IssuedCert, TestCa};
use portcullis::ids::DeviceId;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::{TlsAcceptor, TlsConnector};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Which client certificate to present.
#[derive(Clone, Copy, Debug)]
enum Presented {
    Good,
    GoodSanUri,
    Expired,
    OtherCa,
    NoDeviceId,
    NoCert,
}

/// What the server must see.
#[derive(Debug)]
enum Expect {
    Refused,
    Device(Option<DeviceId>),
    Failure(&'static str),
}

/// Handshakes once; returns the device the server saw (`Ok(None)`: no certificate), or an
/// error (`handshake refused: ...` when the server refused the handshake).
async fn check(mode: MtlsMode, presented: Presented) -> Result<Option<DeviceId>, String> {
    let device_ca = TestCa::new("Device CA");
    let other_ca = TestCa::new("Other CA");
    let server_ca = TestCa::new("Server CA");
    let device =
        DeviceId::parse("d0d0d0d0-1111-4222-8333-444455556666").map_err(|e| e.to_string())?;

    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let ca_path = dir.path().join("device-ca.pem");
    std::fs::write(&ca_path, device_ca.pem()).map_err(|e| e.to_string())?;
    let verifier = client_verifier(&ca_path, mode)
        .map_err(|e| e.to_string())?
        .ok_or("mode off")?;

    let server_cert = server_ca.server_cert();
    let server_config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![server_cert.cert_der.clone()], server_cert.key())
        .map_err(|e| e.to_string())?;

    let mut roots = RootCertStore::empty();
    roots.add(server_ca.der()).map_err(|e| e.to_string())?;
    let client_builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let cert: Option<IssuedCert> = match presented {
        Presented::Good => Some(device_ca.device_cert(device, DeviceName::CommonName, false)),
        Presented::GoodSanUri => Some(device_ca.device_cert(device, DeviceName::SanUri, false)),
        Presented::Expired => Some(device_ca.device_cert(device, DeviceName::CommonName, true)),
        Presented::OtherCa => Some(other_ca.device_cert(device, DeviceName::CommonName, false)),
        Presented::NoDeviceId => Some(device_ca.device_cert(device, DeviceName::Neither, false)),
        Presented::NoCert => None,
    };
    let client_config = match cert {
        Some(c) => client_builder
            .with_client_auth_cert(vec![c.cert_der.clone()], c.key())
            .map_err(|e| e.to_string())?,
        None => client_builder.with_no_client_auth(),
    };

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let acceptor = TlsAcceptor::from(Arc::new(server_config));
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.map_err(|e| e.to_string())?;
        let mut tls = acceptor
            .accept(tcp)
            .await
            .map_err(|e| format!("handshake refused: {e}"))?;
        let device = device_from_peer_certificates(tls.get_ref().1.peer_certificates())
            .map_err(|f| format!("{}", f.reason))?;
        let _ = tls.write_all(b"ok").await;
        let _ = tls.shutdown().await;
        Ok::<_, String>(device)
    });
    let connector = TlsConnector::from(Arc::new(client_config));
    let client = async {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        let name = ServerName::try_from("localhost").map_err(|e| e.to_string())?;
        let mut tls = connector
            .connect(name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        let _ = tls.read_to_end(&mut buf).await;
        Ok::<_, String>(())
    };
    let _ = client.await;
    server.await.map_err(|e| e.to_string())?
}

#[tokio::test]
async fn device_certificates_in_optional_and_required_modes() {
    let device = DeviceId::parse("d0d0d0d0-1111-4222-8333-444455556666").ok();
    use Expect::*;
    use MtlsMode::{Optional, Required};
    use Presented::*;
    let cases = [
        (Required, Good, Device(device)),
        (Required, GoodSanUri, Device(device)),
        (Required, Expired, Refused),
        (Required, OtherCa, Refused),
        (Required, NoCert, Refused),
        (Optional, Good, Device(device)),
        (Optional, Expired, Refused),
        (Optional, OtherCa, Refused),
        (Optional, NoCert, Device(None)),
        (Optional, NoDeviceId, Failure("certificate_invalid")),
    ];
    for (mode, presented, expected) in cases {
        let got = check(mode, presented).await;
        match expected {
            Refused => assert!(
                got.as_ref()
                    .is_err_and(|e| e.starts_with("handshake refused")),
                "{mode:?} {presented:?}: {got:?}"
            ),
            Device(want) => assert_eq!(got, Ok(want), "{mode:?} {presented:?}"),
            Failure(reason) => assert_eq!(got, Err(reason.to_owned()), "{mode:?} {presented:?}"),
        }
    }
}
