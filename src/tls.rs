//! TLS material (SPEC §11): a given certificate and key, or `--tls-self-signed`, which makes a
//! local CA and a certificate for localhost and 127.0.0.1 once, writes the CA to
//! `<data dir>/tls/ca.pem` for clients to trust, and reuses both on later starts.

use crate::config::Config;
use crate::store::key_store::write_private;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use std::path::Path;

/// A certificate chain and its private key, both PEM.
pub struct TlsMaterial {
    pub cert_chain_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

pub async fn load(config: &Config) -> Result<Option<TlsMaterial>, String> {
    if let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) {
        let cert_chain_pem = tokio::fs::read(cert)
            .await
            .map_err(|e| format!("reading {}: {e}", cert.display()))?;
        let key_pem = tokio::fs::read(key)
            .await
            .map_err(|e| format!("reading {}: {e}", key.display()))?;
        return Ok(Some(TlsMaterial {
            cert_chain_pem,
            key_pem,
        }));
    }
    if config.tls_self_signed {
        return self_signed(&config.data_dir.join("tls")).await.map(Some);
    }
    Ok(None)
}

async fn self_signed(dir: &Path) -> Result<TlsMaterial, String> {
    let (ca_path, cert_path, key_path) = (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server-key.pem"),
    );
    if let (Ok(cert), Ok(key)) = (
        tokio::fs::read(&cert_path).await,
        tokio::fs::read(&key_path).await,
    ) && tokio::fs::metadata(&ca_path).await.is_ok()
    {
        return Ok(TlsMaterial {
            cert_chain_pem: cert,
            key_pem: key,
        });
    }
    let made =
        make_ca_and_leaf().map_err(|e| format!("making the self-signed certificates: {e}"))?;
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| format!("creating {}: {e}", dir.display()))?;
    tokio::fs::write(&ca_path, &made.ca_pem)
        .await
        .map_err(|e| format!("writing {}: {e}", ca_path.display()))?;
    write_private(&dir.join("ca-key.pem"), &made.ca_key_pem)
        .await
        .map_err(|e| e.to_string())?;
    let chain = format!("{}{}", made.leaf_pem, made.ca_pem);
    tokio::fs::write(&cert_path, &chain)
        .await
        .map_err(|e| format!("writing {}: {e}", cert_path.display()))?;
    write_private(&key_path, &made.leaf_key_pem)
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(ca = %ca_path.display(), "made a local CA and a certificate for localhost and 127.0.0.1; trust the CA in clients");
    Ok(TlsMaterial {
        cert_chain_pem: chain.into_bytes(),
        key_pem: made.leaf_key_pem.into_bytes(),
    })
}

struct Made {
    ca_pem: String,
    ca_key_pem: String,
    leaf_pem: String,
    leaf_key_pem: String,
}

fn make_ca_and_leaf() -> Result<Made, rcgen::Error> {
    let now = time::OffsetDateTime::now_utc();
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name
        .push(DnType::CommonName, "agentauth local CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca.not_before = now - time::Duration::days(1);
    ca.not_after = now + time::Duration::days(3650);
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, &ca_key);

    let mut leaf = CertificateParams::new(vec!["localhost".to_owned()])?;
    leaf.subject_alt_names
        .push(SanType::IpAddress(std::net::IpAddr::V4(
            std::net::Ipv4Addr::LOCALHOST,
        )));
    leaf.subject_alt_names
        .push(SanType::IpAddress(std::net::IpAddr::V6(
            std::net::Ipv6Addr::LOCALHOST,
        )));
    leaf.distinguished_name
        .push(DnType::CommonName, "localhost");
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.not_before = now - time::Duration::days(1);
    leaf.not_after = now + time::Duration::days(825);
    let leaf_key = KeyPair::generate()?;
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer)?;
    Ok(Made {
        ca_pem: ca_cert.pem(),
        ca_key_pem: ca_key.serialize_pem(),
        leaf_pem: leaf_cert.pem(),
        leaf_key_pem: leaf_key.serialize_pem(),
    })
}
