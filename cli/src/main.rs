//! The `akex` command: keys, a Noise echo server and client, and a demo
//! that runs real handshakes and a short benchmark over loopback.

mod bench;
mod common;
mod connect;
mod demo;
mod harness;
mod hsm;
mod key_files;
mod keys;
mod passphrase;
mod protocols;
mod serve;
mod serve_log;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[global_allocator]
static ALLOC: bench::CountingAlloc = bench::CountingAlloc;

/// Authenticated key exchange: Noise handshakes over TCP, with measurements.
#[derive(Parser)]
#[command(name = "akex", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a new private key (base64, mode 0600) and print its public key:
    /// X25519 by default, an Ed25519 seed (`--type ed25519`) for SIGMA, or
    /// an ML-KEM-768 seed (`--type mlkem768`) for the akex-pq-* protocols.
    Keygen {
        /// Where to write the key; an existing file is never overwritten.
        #[arg(long)]
        output: PathBuf,
        /// The key type.
        #[arg(long = "type", value_enum, default_value_t = KeyFileType::X25519)]
        key_type: KeyFileType,
    },
    /// Print the base64 public key of a private key file. With
    /// --kem-identity too: the X25519 public key followed by the ML-KEM-768
    /// encapsulation key, the --remote-key of the akex-pq-* protocols.
    Pubkey {
        /// The private key file.
        #[arg(long)]
        identity: PathBuf,
        /// The key type (x25519 and ed25519 files have the same format).
        #[arg(long = "type", value_enum, default_value_t = KeyFileType::X25519)]
        key_type: KeyFileType,
        /// An ML-KEM-768 key file to append the encapsulation key of (with
        /// an X25519 --identity).
        #[arg(long = "kem-identity")]
        kem_identity: Option<PathBuf>,
    },
    /// List every protocol with its properties and message sizes.
    Protocols,
    /// Accept connections, run the handshake, echo every message back.
    Serve(serve::ServeArgs),
    /// Connect, run the handshake, send messages and check their echoes.
    Connect(connect::ConnectArgs),
    /// Run real handshakes and a short benchmark on loopback, with defaults.
    Demo(demo::DemoArgs),
    /// The benchmark harness: akex and rustls side by side over loopback
    /// TCP (latency percentiles, CPU time, throughput, bytes, memory).
    Bench(bench::BenchArgs),
    /// The key store: generate, list, show, rotate, revoke, destroy, trust,
    /// untrust, audit.
    Keys(keys::KeysArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Keygen { output, key_type } => common::report(keygen(&output, key_type)),
        Command::Pubkey {
            identity,
            key_type,
            kem_identity,
        } => common::report(pubkey(&identity, key_type, kem_identity.as_deref())),
        Command::Protocols => {
            print!("{}", protocols::table());
            ExitCode::SUCCESS
        }
        Command::Serve(args) => {
            match common::runtime().and_then(|rt| rt.block_on(serve::run(args))) {
                Ok(code) => code,
                Err(e) => {
                    eprintln!("akex serve: error: {}", common::message(&e));
                    ExitCode::FAILURE
                }
            }
        }
        Command::Connect(args) => connect::main(args),
        Command::Keys(args) => keys::main(args),
        Command::Bench(args) => match common::runtime()
            .map_err(harness::BenchError::from)
            .and_then(|rt| rt.block_on(bench::run(args)))
        {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("akex bench: error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Demo(args) => match common::runtime()
            .map_err(harness::BenchError::from)
            .and_then(|rt| rt.block_on(demo::run(args)))
        {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("akex demo: error: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

/// `--type` of key files: one line of base64 each. X25519 and Ed25519
/// hold 32 bytes (a private key or a seed), ML-KEM-768 the 64-byte seed
/// `d ‖ z`, RSA-3072 (--features rsa-kt) PKCS#8 DER.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum KeyFileType {
    /// Noise and hybrid static keys.
    X25519,
    /// SIGMA signing identities.
    Ed25519,
    /// ECDSA P-256 identities of the FIPS-algorithm SIGMA suite (the
    /// 32-byte private scalar).
    P256,
    /// ML-KEM-768 static keys of the akex-pq-* protocols.
    Mlkem768,
    /// RSA-3072 key transport (NOT forward secret; --features rsa-kt).
    #[cfg(feature = "rsa-kt")]
    Rsa3072,
}

fn public_of(
    key: &akex::keys::StaticSecret,
    key_type: KeyFileType,
) -> Result<Vec<u8>, akex::Error> {
    Ok(match key_type {
        KeyFileType::Ed25519 => akex::keys::SigningKey::from_seed(key.private().clone())
            .public()
            .to_vec(),
        KeyFileType::P256 => akex::keys::P256SigningKey::from_scalar(key.private())?
            .public()
            .to_vec(),
        _ => key.public().to_vec(),
    })
}

fn keygen(output: &std::path::Path, key_type: KeyFileType) -> Result<(), akex::Error> {
    match key_type {
        KeyFileType::X25519 | KeyFileType::Ed25519 => {}
        KeyFileType::P256 => {
            // A scalar below the group order, from aws-lc's generator.
            let key = akex::keys::P256SigningKey::generate()?;
            key_files::write_new_key_file(output, key.scalar()?.expose())?;
            println!("{}", key_files::b64(key.public()));
            return Ok(());
        }
        KeyFileType::Mlkem768 => {
            let seed = akex::crypto::Secret::<{ akex::keys::MlKem768KeyPair::SEED_LEN }>::random(
                &mut akex::crypto::OsRng,
            );
            let pair = akex::keys::MlKem768KeyPair::from_seed(&seed);
            key_files::write_new_key_file(output, seed.expose())?;
            println!("{}", key_files::b64(pair.encapsulation_key()));
            return Ok(());
        }
        #[cfg(feature = "rsa-kt")]
        KeyFileType::Rsa3072 => {
            if output.exists() {
                // Fail before the slow key generation; the write checks again.
                return Err(akex::Error::KeyFile {
                    path: output.display().to_string(),
                    reason: "already exists; refusing to overwrite".into(),
                    source: None,
                });
            }
            let pair = akex::handshake::rsa::RsaKeyPair::generate()?;
            key_files::write_new_key_file(output, &pair.to_pkcs8()?)?;
            println!("{}", key_files::b64(pair.public_key_der()));
            return Ok(());
        }
    }
    // 32 random bytes either way: an X25519 scalar or an Ed25519 seed.
    let key = akex::keys::write_new_identity(output, &mut akex::crypto::OsRng)?;
    println!("{}", key_files::b64(&public_of(&key, key_type)?));
    Ok(())
}

fn pubkey(
    identity: &std::path::Path,
    key_type: KeyFileType,
    kem_identity: Option<&std::path::Path>,
) -> Result<(), akex::Error> {
    match key_type {
        KeyFileType::X25519 | KeyFileType::Ed25519 | KeyFileType::P256 => {}
        KeyFileType::Mlkem768 => {
            let pair = key_files::load_mlkem768(identity)?;
            println!("{}", key_files::b64(pair.encapsulation_key()));
            return Ok(());
        }
        #[cfg(feature = "rsa-kt")]
        KeyFileType::Rsa3072 => {
            let pair = key_files::load_rsa3072(identity)?;
            println!("{}", key_files::b64(pair.public_key_der()));
            return Ok(());
        }
    }
    let key = akex::keys::load_identity(identity)?;
    let public = public_of(&key, key_type)?;
    match kem_identity {
        Some(path) if key_type == KeyFileType::X25519 => {
            let pair = key_files::load_mlkem768(path)?;
            let mut combined = public.to_vec();
            combined.extend_from_slice(pair.encapsulation_key());
            println!("{}", key_files::b64(&combined));
        }
        Some(_) => {
            return Err(akex::error::ConfigError::Invalid(
                "--kem-identity goes with an X25519 --identity".into(),
            )
            .into())
        }
        None => println!("{}", key_files::b64(&public)),
    }
    Ok(())
}
