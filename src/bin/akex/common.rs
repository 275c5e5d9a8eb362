//! Options and helpers shared by the subcommands.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use akex::crypto::Secret;
use akex::error::ConfigError;
use akex::keys::{decode_public_key, load_identity};
use akex::transport::TransportOptions;
use akex::{Error, NoiseConfig};
use clap::Args;

/// How to run the handshake: protocol, keys, PSKs, limits.
#[derive(Args, Clone, Debug)]
pub struct HandshakeArgs {
    /// Full Noise protocol name, e.g. Noise_XX_25519_ChaChaPoly_BLAKE2s.
    #[arg(long)]
    pub protocol: String,
    /// Our X25519 private key file (from `akex keygen`).
    #[arg(long)]
    pub identity: Option<PathBuf>,
    /// The peer's public key, base64: required in advance by NK/IK/KK, and
    /// pinned (checked) by patterns that transmit it, such as XX.
    #[arg(long = "remote-key")]
    pub remote_key: Option<String>,
    /// A 32-byte pre-shared key, base64; repeat for several psk slots.
    #[arg(long)]
    pub psk: Vec<String>,
    /// Prologue both sides hash into the transcript (UTF-8 text).
    #[arg(long, default_value = "")]
    pub prologue: String,
    /// Handshake timeout in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,
}

impl HandshakeArgs {
    pub fn noise_config(&self) -> Result<NoiseConfig, Error> {
        let mut config = NoiseConfig::new(&self.protocol).prologue(self.prologue.as_bytes());
        if let Some(path) = &self.identity {
            config = config.local_static(load_identity(path)?);
        }
        if let Some(key) = &self.remote_key {
            config = config.remote_static(decode_public_key(key)?);
        }
        for psk in &self.psk {
            let bytes = decode_public_key(psk)
                .map_err(|_| ConfigError::InvalidKey("--psk must be 32 bytes of base64"))?;
            config = config.psk(Secret::new(bytes));
        }
        // Fail on a bad name or missing key before touching the network.
        config.params()?;
        Ok(config)
    }

    pub fn transport_options(&self) -> Result<TransportOptions, Error> {
        let timeout = Duration::try_from_secs_f64(self.timeout)
            .ok()
            .filter(|t| !t.is_zero())
            .ok_or_else(|| ConfigError::Invalid("--timeout must be a positive number".into()))?;
        Ok(TransportOptions {
            handshake_timeout: timeout,
            ..TransportOptions::default()
        })
    }
}

pub fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Error::Io)
}

pub fn report(result: Result<(), Error>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("akex: error: {e}");
            ExitCode::FAILURE
        }
    }
}

pub fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
