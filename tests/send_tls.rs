//! STARTTLS with a verified certificate and AUTH against a real SMTP server.

use crate::common;
use crate::send_support;

use std::net::SocketAddr;
use std::sync::Arc;

use common::{Engine, TestApp};
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::x509::extension::{ExtendedKeyUsage, SubjectAlternativeName};
use openssl::x509::{X509, X509NameBuilder};
use send_support::*;

struct SelfSigned {
    cert_path: String,
    key_path: String,
    cert_der: Vec<u8>,
    key_der: Vec<u8>,
}

/// A self-signed certificate for `localhost`, as PEM files and DER.
fn self_signed(dir: &std::path::Path) -> SelfSigned {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    let key = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "localhost").unwrap();
    let name = name.build();
    let mut serial = BigNum::new().unwrap();
    serial.rand(64, MsbOption::MAYBE_ZERO, false).unwrap();
    let mut cert = X509::builder().unwrap();
    cert.set_version(2).unwrap();
    cert.set_serial_number(&serial.to_asn1_integer().unwrap())
        .unwrap();
    cert.set_subject_name(&name).unwrap();
    cert.set_issuer_name(&name).unwrap();
    cert.set_pubkey(&key).unwrap();
    cert.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    cert.set_not_after(&Asn1Time::days_from_now(2).unwrap())
        .unwrap();
    let san = SubjectAlternativeName::new()
        .dns("localhost")
        .build(&cert.x509v3_context(None, None))
        .unwrap();
    cert.append_extension(san).unwrap();
    cert.append_extension(ExtendedKeyUsage::new().server_auth().build().unwrap())
        .unwrap();
    cert.sign(&key, MessageDigest::sha256()).unwrap();
    let cert = cert.build();
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    std::fs::write(&cert_path, cert.to_pem().unwrap()).unwrap();
    std::fs::write(&key_path, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    SelfSigned {
        cert_path: cert_path.display().to_string(),
        key_path: key_path.display().to_string(),
        cert_der: cert.to_der().unwrap(),
        key_der: key.private_key_to_pkcs8().unwrap(),
    }
}

/// Implicit TLS in front of a plain SMTP server, as on port 465; returns its port.
async fn implicit_tls_proxy(certificate: &SelfSigned, plain: SocketAddr) -> u16 {
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    use tokio_rustls::rustls::{ServerConfig, crypto::ring};
    let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(certificate.cert_der.clone())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certificate.key_der.clone())),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(socket).await else {
                    return;
                };
                let Ok(mut upstream) = tokio::net::TcpStream::connect(plain).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
            });
        }
    });
    port
}

const USER: &str = "ventas@puntoa.ar";
const PASSWORD: &str = "s3cret-smtp-password";

async fn starttls_with_auth_delivers_and_bad_setups_retry(engine: Engine) {
    let dir = tempfile::tempdir().unwrap();
    let certificate = self_signed(dir.path());
    let (cert, key) = (certificate.cert_path.clone(), certificate.key_path.clone());
    let smtp = SmtpServer::start_tls(&cert, &key, (USER, PASSWORD));
    let port = smtp.port.to_string();
    let base = relay_env(smtp.port);
    let tls = [
        ("SMTP_SERVER", "localhost"),
        ("SMTP_PORT", port.as_str()),
        ("SMTP_SEC_TYPE", "TLS"),
        ("SMTP_USERNAME", USER),
        ("OUTBOX_RETRY_BASE_SECS", "30"),
    ];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut vars: Vec<(&'static str, &str)> = tls.to_vec();
        vars.extend_from_slice(extra);
        vars
    };

    // Trusting the certificate, with the right password: delivered over TLS.
    let cert_ref: &'static str = Box::leak(cert.clone().into_boxed_str());
    let good = with(&[("SMTP_TLS_CA_FILE", cert_ref), ("SMTP_PASSWORD", PASSWORD)]);
    let app = TestApp::spawn_with(engine, &env_with(&base, &good)).await;
    let id = send_ok(&app, &email("Encrypted")).await;
    wait_for_status(&app, &id, |e| e["status"] == "sent").await;
    assert_eq!(smtp.wait_for(1).await[0].from, USER);
    app.stop().await;

    // A wrong password is an authentication failure, kept for retry; never logged or shown.
    let wrong = with(&[
        ("SMTP_TLS_CA_FILE", cert_ref),
        ("SMTP_PASSWORD", "wrong-password"),
    ]);
    let app = TestApp::spawn_with(engine, &env_with(&base, &wrong)).await;
    let id = send_ok(&app, &email("Wrong password")).await;
    let entry = wait_for_status(&app, &id, |e| e["status"] == "retrying").await;
    let error = entry["lastError"].as_str().unwrap();
    assert!(error.contains("authentication failed"), "{error}");
    assert!(!error.contains("wrong-password"), "{error}");
    app.stop().await;

    // Without trusting the self-signed certificate, STARTTLS refuses it: nothing is sent.
    let untrusted = with(&[("SMTP_PASSWORD", PASSWORD)]);
    let app = TestApp::spawn_with(engine, &env_with(&base, &untrusted)).await;
    let id = send_ok(&app, &email("Untrusted")).await;
    let entry = wait_for_status(&app, &id, |e| e["status"] == "retrying").await;
    assert!(
        entry["lastError"]
            .as_str()
            .unwrap()
            .contains("STARTTLS failed"),
        "{entry}"
    );
    assert_eq!(smtp.received().len(), 1);
    app.stop().await;
}

async fn implicit_tls_delivers(engine: Engine) {
    let dir = tempfile::tempdir().unwrap();
    let certificate = self_signed(dir.path());
    let smtp = SmtpServer::start();
    let port = implicit_tls_proxy(&certificate, smtp.address())
        .await
        .to_string();
    let base = relay_env(smtp.port);
    let vars = env_with(
        &base,
        &[
            ("SMTP_SERVER", "localhost"),
            ("SMTP_PORT", port.as_str()),
            ("SMTP_SEC_TYPE", "SSL"),
            ("SMTP_TLS_CA_FILE", certificate.cert_path.as_str()),
        ],
    );
    let app = TestApp::spawn_with(engine, &vars).await;
    let id = send_ok(&app, &email("Implicit TLS")).await;
    wait_for_status(&app, &id, |e| e["status"] == "sent").await;
    assert_eq!(smtp.wait_for(1).await.len(), 1);
    app.stop().await;
}

engine_tests!(
    starttls_with_auth_delivers_and_bad_setups_retry,
    implicit_tls_delivers,
);
