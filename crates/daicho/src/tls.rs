//! The server's certificate: the configured PEM files, or on the embedded default a
//! self-signed certificate for the public host names, generated once into `<data_dir>/tls/`
//! with the key readable only by its owner.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::Config;

pub fn default_paths(config: &Config) -> (PathBuf, PathBuf) {
    let dir = config.data_dir.join("tls");
    (dir.join("cert.pem"), dir.join("key.pem"))
}

pub fn load_or_generate(config: &Config) -> anyhow::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let (cert, key) = match (&config.tls.cert_path, &config.tls.key_path) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        _ => {
            let (c, k) = default_paths(config);
            if !c.exists() || !k.exists() {
                generate(&c, &k, &config.server.public_hosts)?;
            }
            (c, k)
        }
    };
    load(&cert, &key)
}

pub fn load(cert: &Path, key: &Path) -> anyhow::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let chain = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("cannot read certificate {}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("bad PEM in {}", cert.display()))?;
    if chain.is_empty() {
        anyhow::bail!("no certificate in {}", cert.display());
    }
    let key =
        PrivateKeyDer::from_pem_file(key).with_context(|| format!("cannot read private key {}", key.display()))?;
    Ok((chain, key))
}

fn generate(cert: &Path, key: &Path, hosts: &[String]) -> anyhow::Result<()> {
    let mut names: Vec<String> = hosts.to_vec();
    for n in ["localhost", "127.0.0.1"] {
        if !names.iter().any(|h| h == n) {
            names.push(n.to_owned());
        }
    }
    let mut params = rcgen::CertificateParams::new(names)?;
    params.distinguished_name.push(rcgen::DnType::CommonName, "Daicho (self-signed)");
    let key_pair = rcgen::KeyPair::generate()?;
    let c = params.self_signed(&key_pair)?;
    if let Some(dir) = cert.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(cert, c.pem())?;
    write_private(key, key_pair.serialize_pem().as_bytes())?;
    tracing::info!(cert = %cert.display(), "generated a self-signed TLS certificate");
    Ok(())
}

fn write_private(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    f.write_all(data)?;
    Ok(())
}
