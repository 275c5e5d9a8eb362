//! The `akex` command: keys, a Noise echo server and client, and a demo
//! that runs real handshakes and a short benchmark over loopback.

mod common;
mod connect;
mod demo;
mod keys;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Authenticated key exchange: Noise handshakes over TCP, with measurements.
#[derive(Parser)]
#[command(name = "akex", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a new X25519 private key (base64, mode 0600) and print its public key.
    Keygen {
        /// Where to write the key; an existing file is never overwritten.
        #[arg(long)]
        output: PathBuf,
    },
    /// Print the base64 public key of a private key file.
    Pubkey {
        /// The private key file.
        #[arg(long)]
        identity: PathBuf,
    },
    /// Accept connections, run the handshake, echo every message back.
    Serve(serve::ServeArgs),
    /// Connect, run the handshake, send messages and check their echoes.
    Connect(connect::ConnectArgs),
    /// Run real handshakes and a short benchmark on loopback, with defaults.
    Demo(demo::DemoArgs),
    /// The key store: generate, list, show, rotate, revoke, destroy, trust,
    /// untrust, audit.
    Keys(keys::KeysArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Keygen { output } => common::report(keygen(&output)),
        Command::Pubkey { identity } => common::report(pubkey(&identity)),
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
        Command::Demo(args) => {
            common::report(common::runtime().and_then(|rt| rt.block_on(demo::run(args))))
        }
    }
}

fn keygen(output: &std::path::Path) -> Result<(), akex::Error> {
    let key = akex::keys::write_new_identity(output, &mut akex::crypto::OsRng)?;
    println!("{}", akex::keys::encode_public_key(key.public()));
    Ok(())
}

fn pubkey(identity: &std::path::Path) -> Result<(), akex::Error> {
    let key = akex::keys::load_identity(identity)?;
    println!("{}", akex::keys::encode_public_key(key.public()));
    Ok(())
}
