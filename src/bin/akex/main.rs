//! The `akex` command: keys, a Noise echo server and client, and a demo
//! that runs real handshakes and a short benchmark over loopback.

mod bench;
mod common;
mod connect;
mod demo;
mod keys;
mod protocols;
mod serve;

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
    /// X25519 by default, or an Ed25519 seed (`--type ed25519`) for SIGMA.
    Keygen {
        /// Where to write the key; an existing file is never overwritten.
        #[arg(long)]
        output: PathBuf,
        /// The key type.
        #[arg(long = "type", value_enum, default_value_t = KeyFileType::X25519)]
        key_type: KeyFileType,
    },
    /// Print the base64 public key of a private key file.
    Pubkey {
        /// The private key file.
        #[arg(long)]
        identity: PathBuf,
        /// The key type (the file format is the same for both).
        #[arg(long = "type", value_enum, default_value_t = KeyFileType::X25519)]
        key_type: KeyFileType,
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
        Command::Pubkey { identity, key_type } => common::report(pubkey(&identity, key_type)),
        Command::Protocols => {
            print!("{}", protocols::table());
            ExitCode::SUCCESS
        }
        Command::Serve(args) => {
            match common::runtime().and_then(|rt| rt.block_on(serve::run(args))) {
                Ok(code) => code,
                Err(e) => {
                    eprintln!("akex serve: error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Connect(args) => connect::main(args),
        Command::Keys(args) => keys::main(args),
        Command::Bench(args) => match common::runtime().and_then(|rt| {
            rt.block_on(bench::run(args))
                .map_err(|e| akex::Error::Io(std::io::Error::other(e)))
        }) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("akex bench: error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Demo(args) => {
            common::report(common::runtime().and_then(|rt| rt.block_on(demo::run(args))))
        }
    }
}

/// `--type` of key files: both hold 32 base64 bytes (an X25519 private
/// key, or an Ed25519 seed).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum KeyFileType {
    /// Noise and hybrid static keys.
    X25519,
    /// SIGMA signing identities.
    Ed25519,
}

fn public_of(key: &akex::crypto::StaticSecret, key_type: KeyFileType) -> [u8; 32] {
    match key_type {
        KeyFileType::X25519 => *key.public(),
        KeyFileType::Ed25519 => ed25519_dalek::SigningKey::from_bytes(key.private().expose())
            .verifying_key()
            .to_bytes(),
    }
}

fn keygen(output: &std::path::Path, key_type: KeyFileType) -> Result<(), akex::Error> {
    // 32 random bytes either way: an X25519 scalar or an Ed25519 seed.
    let key = akex::keys::write_new_identity(output, &mut akex::crypto::OsRng)?;
    println!(
        "{}",
        akex::keys::encode_public_key(&public_of(&key, key_type))
    );
    Ok(())
}

fn pubkey(identity: &std::path::Path, key_type: KeyFileType) -> Result<(), akex::Error> {
    let key = akex::keys::load_identity(identity)?;
    println!(
        "{}",
        akex::keys::encode_public_key(&public_of(&key, key_type))
    );
    Ok(())
}
