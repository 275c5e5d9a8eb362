//! Unit tests of the harness's rows (`mod.rs`).
use super::*;
use akex::handshake::hybrid::{HYBRID_IK, HYBRID_NK, HYBRID_XX};
use akex::handshake::pq::{PQ_IK, PQ_XX};
use akex::handshake::sigma::SIGMA_CHACHAPOLY;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[test]
fn akex_rows_are_classified_from_the_registry() {
    for (name, auth, hybrid) in [
        (SIGMA_CHACHAPOLY, AuthClass::Mutual, false),
        (HYBRID_NK, AuthClass::ServerAuth, true),
        (HYBRID_XX, AuthClass::Mutual, true),
        (HYBRID_IK, AuthClass::Mutual, true),
        (PQ_XX, AuthClass::Mutual, true),
        (PQ_IK, AuthClass::Mutual, true),
    ] {
        let e = Endpoint::local(name).unwrap();
        assert_eq!((e.auth(), e.is_hybrid()), (auth, hybrid), "{name}");
        assert!(e.is_forward_secret() && e.has_server() && !e.is_baseline());
    }
    #[cfg(feature = "rsa-kt")]
    {
        let e = Endpoint::local(akex::handshake::rsa::RSA_KT).unwrap();
        assert_eq!((e.auth(), e.is_hybrid()), (AuthClass::ServerAuth, false));
        assert!(!e.is_forward_secret());
    }
    #[cfg(feature = "ffdh")]
    {
        let e = Endpoint::local(akex::handshake::ffdh::FFDH_NK).unwrap();
        assert_eq!((e.auth(), e.is_hybrid()), (AuthClass::ServerAuth, false));
        assert!(e.is_forward_secret());
    }
    #[cfg(feature = "openssl")]
    {
        let e = Endpoint::local("OpenSSL_TLS13_X25519_mTLS").unwrap();
        assert_eq!(e.auth(), AuthClass::Mutual);
        assert_eq!(e.implementation(), Implementation::Openssl);
    }
    assert!(Endpoint::local("akex-no-such-protocol").is_err());
    for name in default_protocols() {
        assert!(Endpoint::local(&name).is_ok(), "{name}");
    }
}

#[tokio::test]
async fn akex_rows_handshake_and_echo() {
    #[allow(unused_mut)]
    let mut names = vec![SIGMA_CHACHAPOLY, HYBRID_NK, HYBRID_XX, PQ_IK];
    #[cfg(feature = "rsa-kt")]
    names.push(akex::handshake::rsa::RSA_KT);
    #[cfg(feature = "ffdh")]
    names.push(akex::handshake::ffdh::FFDH_NK);
    for name in names {
        let e = Endpoint::local(name).unwrap();
        let (a, b) = tokio::io::duplex(1 << 16);
        let server = e.clone();
        let task = tokio::spawn(async move {
            let mut s = server.server(b).await.unwrap();
            let mut buf = [0u8; 4];
            s.read_exact(&mut buf).await.unwrap();
            s.write_all(&buf).await.unwrap();
            s.flush().await.unwrap();
            s.shutdown().await.unwrap();
        });
        let mut c = e.client(a).await.unwrap();
        c.write_all(b"ping").await.unwrap();
        c.flush().await.unwrap();
        let mut buf = [0u8; 4];
        c.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping", "{name}");
        task.await.unwrap();
    }
}

#[cfg(feature = "openssl")]
#[tokio::test]
async fn openssl_rows_handshake_and_echo() {
    for name in ["OpenSSL_TLS13_X25519", "OpenSSL_TLS13_X25519_mTLS"] {
        let e = Endpoint::local(name).unwrap();
        let (a, b) = tokio::io::duplex(1 << 16);
        let server = e.clone();
        let task = tokio::spawn(async move {
            let mut s = server.server(b).await.unwrap();
            let mut buf = [0u8; 4];
            s.read_exact(&mut buf).await.unwrap();
            s.write_all(&buf).await.unwrap();
            s.flush().await.unwrap();
        });
        let mut c = e.client(a).await.unwrap();
        c.write_all(b"ping").await.unwrap();
        c.flush().await.unwrap();
        let mut buf = [0u8; 4];
        c.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping", "{name}");
        task.await.unwrap();
    }
}
