//! The threat model of docs/security.md, promise by promise, against every
//! protocol of the registry: forward secrecy (and the one-way patterns
//! that lack it), identities never in clear, independent sessions, and a
//! library that never prints.

mod threat_support;

use std::path::Path;

use akex::handshake::registry::{self, HandshakeKeys};
use akex::handshake::Established;
use akex::{Handshake, Role, Session};
use threat_support::*;

const I: u8 = 1;
const R: u8 = 2;

/// PSKs for the Noise `pskN` names (the attacker below knows them too).
fn with_psks(name: &str, mut keys: HandshakeKeys) -> HandshakeKeys {
    if name.starts_with("Noise_") {
        let p = akex::handshake::noise::NoiseProtocol::parse(name).unwrap();
        for _ in p.psk_slots() {
            keys = keys.psk(akex::crypto::Secret::new([9; 32]));
        }
    }
    keys
}

fn side(name: &str, role: Role) -> HandshakeKeys {
    let (me, peer) = if role == Role::Initiator {
        (I, R)
    } else {
        (R, I)
    };
    with_psks(name, keys(name, role, me, peer, false))
}

/// One honest session of `name`: the run, and both ends' results.
fn session(name: &str) -> (Run, Established, Established) {
    let mut i = build(name, Role::Initiator, &side(name, Role::Initiator));
    let mut r = build(name, Role::Responder, &side(name, Role::Responder));
    let run = pump(&mut i, &mut r);
    assert!(run.error.is_none(), "{name}: {:?}", run.error);
    (run, i.finish().unwrap(), r.finish().unwrap())
}

#[test]
fn one_way_patterns_are_marked_not_forward_secret() {
    for p in covered() {
        let one_way = ["Noise_N_", "Noise_K_", "Noise_X_"]
            .iter()
            .any(|n| p.name.starts_with(n));
        assert_eq!(p.one_way, one_way, "{}", p.name);
        assert_eq!(p.forward_secrecy, !one_way, "{}", p.name);
        assert_eq!(
            registry::forward_secrecy(p.name),
            Some(!one_way),
            "{}",
            p.name
        );
    }
    // Names without a row are judged by their pattern.
    for (name, fs) in [
        ("Noise_N_25519_AESGCM_SHA256", false),
        ("Noise_Kpsk0_25519_ChaChaPoly_BLAKE2b", false),
        ("Noise_Xpsk1_25519_AESGCM_SHA512", false),
        ("Noise_XX_25519_AESGCM_SHA512", true),
        ("Noise_NK1_25519_ChaChaPoly_SHA256", true),
        ("Noise_IKpsk2_25519_AESGCM_BLAKE2b", true),
    ] {
        assert_eq!(registry::forward_secrecy(name), Some(fs), "{name}");
    }
    assert_eq!(registry::forward_secrecy("tls13"), None);
}

/// Everything both parties hold for the long term leaks after a session
/// was recorded: their static keys, signing keys, ML-KEM keys and PSKs.
/// The attacker replays each role with them (and fresh randomness of its
/// own, since it never had the ephemeral secrets) and tries to open the
/// recorded records. It fails for every forward-secret protocol and
/// succeeds for the one-way patterns, whose registry rows say so. Where a
/// spec says the first payload or the initiator's identity depends on the
/// responder's static key alone (IK, NK, KK shapes), the attacker reads
/// them, as documented.
#[test]
fn recorded_sessions_stay_secret_after_the_long_term_keys_leak() {
    let mut checked = 0;
    for p in covered() {
        let name = p.name;
        let (run, ie, re) = session(name);
        let (mut si, mut sr) = (Session::new(ie), Session::new(re));
        let (mut i2r, mut r2i) = (Vec::new(), Vec::new());
        si.seal(b"recorded i->r", &mut i2r).unwrap();
        if !p.one_way {
            sr.seal(b"recorded r->i", &mut r2i).unwrap();
        }

        for role in [Role::Responder, Role::Initiator] {
            if p.one_way && role == Role::Initiator {
                continue; // nothing flows to the initiator
            }
            let mut attacker = build(name, role, &side(name, role));
            let mut first_payload = None;
            let mut stuck = false;
            for (k, (sender, m)) in run.messages.iter().enumerate() {
                let result = if *sender == role {
                    attacker.write_message(b"", &mut Vec::new())
                } else {
                    let mut payload = Vec::new();
                    let r = attacker.read_message(m, &mut payload);
                    if k == 0 && r.is_ok() {
                        first_payload = Some(payload);
                    }
                    r
                };
                if result.is_err() {
                    stuck = true;
                    break;
                }
            }
            let opened = !stuck && {
                let mut s = Session::new(attacker.finish().unwrap());
                let record = if role == Role::Responder { &i2r } else { &r2i };
                s.open(record, &mut Vec::new()).is_ok()
            };
            assert_eq!(
                opened, p.one_way,
                "{name}: the {role} replay opened a record"
            );
            if role == Role::Responder && p.message_sizes.len() <= 2 && !name.contains("NN") {
                // The first message is encrypted to the responder's static
                // key only: its payload is not forward secret.
                assert_eq!(first_payload.as_deref(), Some(&b"payload 0"[..]), "{name}");
                assert!(!contains(&run.messages[0].1, b"payload 0"), "{name}");
            }
            checked += 1;
        }
    }
    println!("forward secrecy: {checked} replays with every long-term secret");
    assert!(checked >= 35);
}

/// IK's initiator identity is encrypted to the responder's static key
/// only: whoever later holds that key reads it from a recorded message 1
/// ("initiator vs passive (not forward)" in the registry).
#[test]
fn ik_identity_hiding_is_not_forward() {
    for name in [
        NOISE_IK,
        akex::handshake::hybrid::HYBRID_IK,
        akex::handshake::pq::PQ_IK,
    ] {
        let (run, _, _) = session(name);
        let mut thief = build(name, Role::Responder, &side(name, Role::Responder));
        thief
            .read_message(&run.messages[0].1, &mut Vec::new())
            .unwrap();
        assert_eq!(thief.remote_static(), Some(public(name, I)), "{name}");
        assert!(registry::info(name)
            .unwrap()
            .identity_hiding
            .contains("not forward"));
    }
}

/// A passive observer never sees a long-term public key in clear: every
/// identity on the wire is encrypted (and those known in advance are not
/// sent at all).
#[test]
fn identities_never_travel_in_clear() {
    for name in AUTHENTICATED {
        let (run, _, _) = session(name);
        let wire: Vec<u8> = run.messages.iter().flat_map(|(_, m)| m.clone()).collect();
        for (role, seed) in [(Role::Initiator, I), (Role::Responder, R)] {
            if !has_own_key(name, role) {
                continue;
            }
            let id = public(name, seed);
            // The whole identity, and its first 32 bytes (an X25519 key
            // inside a PQ identity).
            assert!(!contains(&wire, &id), "{name}: {role} identity in clear");
            assert!(!contains(&wire, &id[..32]), "{name}: {role} key in clear");
        }
    }
}

/// Independent ephemeral keys per handshake: two sessions between the same
/// parties share no traffic secret, and a record of one never opens in the
/// other.
#[test]
fn sessions_with_the_same_long_term_keys_are_independent() {
    for p in covered() {
        let (_, a, _) = session(p.name);
        let (_, b, b_resp) = session(p.name);
        assert_ne!(a.handshake_hash(), b.handshake_hash(), "{}", p.name);
        assert_ne!(a.sending_secret(), b.sending_secret(), "{}", p.name);
        let mut sa = Session::new(a);
        let mut record = Vec::new();
        sa.seal(b"session a", &mut record).unwrap();
        let mut other = Session::new(b_resp);
        assert!(other.open(&record, &mut Vec::new()).is_err(), "{}", p.name);
    }
}

/// The parts of `source` that are not test code: without `#[cfg(test)]`
/// modules (skipped to their closing brace) and comment lines.
fn library_code(source: &str) -> String {
    let mut out = String::new();
    let mut lines = source.lines().peekable();
    while let Some(line) = lines.next() {
        let t = line.trim_start();
        if t.starts_with("#[cfg(test)]")
            && lines
                .peek()
                .is_some_and(|next| next.trim_start().starts_with("mod "))
        {
            let mut depth = 0i32;
            for inner in lines.by_ref() {
                depth += inner.matches('{').count() as i32 - inner.matches('}').count() as i32;
                if depth <= 0 && (inner.contains('}') || inner.trim_end().ends_with(';')) {
                    break;
                }
            }
            continue;
        }
        if !t.starts_with("//") {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// The printing calls in `code`, if any.
fn prints(code: &str) -> Vec<String> {
    let calls = [
        "print!(",
        "println!(",
        "eprint!(",
        "eprintln!(",
        "dbg!(",
        "stdout()",
        "stderr()",
    ];
    code.lines()
        .filter(|l| calls.iter().any(|c| l.contains(c)))
        .map(|l| l.trim().to_string())
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// "The library never prints" (docs/security.md, Server limits: events
/// go to a callback): no print, eprint, dbg or handle on stdout/stderr in
/// `src/` outside test modules. The scanner is checked on a sample first,
/// so it can see a print when there is one.
#[test]
fn the_library_never_prints() {
    let sample = "fn f() {\n    eprintln!(\"x\");\n}\n// println!(\"comment\")\n#[cfg(test)]\nmod tests {\n    fn g() {\n        println!(\"y\");\n    }\n}\nfn h() { dbg!(1); }\n";
    assert_eq!(
        prints(&library_code(sample)),
        ["eprintln!(\"x\");", "fn h() { dbg!(1); }"]
    );

    let mut files = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    assert!(files.len() > 50, "{} files", files.len());
    let mut found = Vec::new();
    for file in &files {
        let code = library_code(&std::fs::read_to_string(file).unwrap());
        for line in prints(&code) {
            found.push(format!("{}: {line}", file.display()));
        }
    }
    assert!(
        found.is_empty(),
        "the library prints:\n{}",
        found.join("\n")
    );
}

/// Values docs/security.md states, pinned so the document and the code
/// cannot drift apart.
#[test]
fn values_stated_in_security_md_hold() {
    use akex::transport::datagram::TOKEN_LIFETIME_SECS;
    use akex::transport::{ServerLimits, TransportOptions};
    let limits = ServerLimits::default();
    // "more source addresses than max_half_open / max_half_open_per_ip (64
    // with the defaults)"
    assert_eq!(limits.max_half_open / limits.max_half_open_per_ip, 64);
    // "reuse a cookie it saw for 30 s"
    assert_eq!(TOKEN_LIFETIME_SECS, 30);
    // "A frame longer than max_frame_len is refused" — 65535 by default.
    assert_eq!(TransportOptions::default().max_frame_len, 65_535);
    // "AES-256-GCM and ChaCha20-Poly1305 with 256-bit keys"
    assert_eq!(akex::hazmat::aead::KEY_LEN, 32);
}

/// The label tree of protocols/akex-mode.md as full labels ("akex sigma
/// dh ee", ...).
fn label_tree() -> Vec<String> {
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("protocols/akex-mode.md"),
    )
    .unwrap();
    let tree = doc.split("## Label tree").nth(1).unwrap();
    let block = tree.split("```").nth(1).unwrap();
    let mut path: Vec<String> = Vec::new();
    let mut labels = Vec::new();
    for line in block.lines().skip(1) {
        let Some(at) = line.find("── ") else {
            continue;
        };
        let depth = line[..at].chars().count() / 4;
        let names = line[at + "── ".len()..].split("  ").next().unwrap().trim();
        path.truncate(depth);
        for name in names.split(" | ") {
            let mut full = vec!["akex".to_string()];
            full.extend(path.iter().cloned());
            full.push(name.to_string());
            labels.push(full.join(" "));
        }
        path.push(names.to_string());
    }
    labels
}

/// "Labels are ASCII, start with `akex `, and are never reused": every
/// `b"akex ..."` constant in the library is defined once and is in the
/// spec's label tree.
#[test]
fn every_label_in_the_code_is_in_the_label_tree_once() {
    let tree = label_tree();
    assert!(tree.contains(&"akex sigma dh ee".to_string()), "{tree:?}");
    assert!(tree.contains(&"akex pq kem skem".to_string()), "{tree:?}");
    let mut files = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    let mut seen = std::collections::BTreeMap::new();
    for file in &files {
        let code = library_code(&std::fs::read_to_string(file).unwrap());
        for piece in code.split("b\"akex ").skip(1) {
            let label = format!("akex {}", piece.split('"').next().unwrap());
            let label = label.trim_end_matches("\\0").to_string();
            assert!(label.is_ascii(), "{label}");
            assert!(
                tree.contains(&label),
                "{label} ({}) is not in the label tree",
                file.display()
            );
            if let Some(other) = seen.insert(label.clone(), file.clone()) {
                panic!(
                    "{label} defined in {} and {}",
                    other.display(),
                    file.display()
                );
            }
        }
    }
    assert!(seen.len() >= 30, "{seen:?}");
}

/// "An impostor without the authenticated party's private key fails the
/// handshake": for every protocol and every side it authenticates, the
/// other side expects the real party (its key pinned or known in advance)
/// and an impostor with a valid key of its own answers or initiates.
#[test]
fn impostors_fail_wherever_a_side_is_authenticated() {
    const IMPOSTOR: u8 = 66;
    let mut checked = 0;
    for p in covered() {
        let name = p.name;
        for victim in [Role::Initiator, Role::Responder] {
            let impostor_role = victim.peer();
            if !has_own_key(name, impostor_role) {
                continue; // that side is anonymous by design (NN, NK's initiator)
            }
            let (me, real) = if victim == Role::Initiator {
                (I, R)
            } else {
                (R, I)
            };
            let victim_keys = with_psks(name, keys(name, victim, me, real, true));
            let impostor_keys = with_psks(name, keys(name, impostor_role, IMPOSTOR, me, false));
            let (mut i, mut r) = match victim {
                Role::Initiator => (
                    build(name, victim, &victim_keys),
                    build(name, impostor_role, &impostor_keys),
                ),
                Role::Responder => (
                    build(name, impostor_role, &impostor_keys),
                    build(name, victim, &victim_keys),
                ),
            };
            let run = pump(&mut i, &mut r);
            assert!(
                run.error.is_some(),
                "{name}: an impostor passed as the {impostor_role}"
            );
            checked += 1;
        }
    }
    println!("impostors: {checked} cases refused");
    assert!(checked >= 30);
}

/// noise.md, Keys: a remote key for a side the pattern never
/// authenticates (NN; the responder of NK) cannot be checked, so it is a
/// configuration error rather than a silent no-op.
#[test]
fn a_remote_key_the_pattern_never_checks_is_refused() {
    let key = public(NOISE_XX, R);
    for (name, role) in [
        ("Noise_NN_25519_ChaChaPoly_BLAKE2s", Role::Initiator),
        ("Noise_NN_25519_ChaChaPoly_BLAKE2s", Role::Responder),
        ("Noise_NK_25519_ChaChaPoly_BLAKE2s", Role::Responder),
    ] {
        let keys = keys(name, role, R, I, false).remote(key.clone());
        let built = match role {
            Role::Initiator => registry::initiator(name, &keys),
            Role::Responder => registry::responder(&[name], &keys),
        };
        assert!(
            matches!(
                built,
                Err(akex::Error::Config(akex::error::ConfigError::Invalid(_)))
            ),
            "{name} {role}"
        );
    }
}

/// The registry's `post_quantum` column says what survives a quantum
/// attacker, family by family, as docs/security.md does: nothing for the
/// classical families, confidentiality for the hybrids and Noise HFS,
/// confidentiality and authentication for the PQ family.
#[test]
fn registry_post_quantum_column_matches_the_families() {
    for p in covered() {
        let pq = p.post_quantum;
        match p.family {
            f if f.starts_with("SIGMA") => assert_eq!(pq, "no", "{}", p.name),
            "Noise" => assert!(pq.starts_with("no"), "{}: {pq}", p.name),
            "hybrid" | "Noise HFS (snow)" => {
                assert!(
                    pq.starts_with("confidentiality") && !pq.contains("authentication"),
                    "{}",
                    p.name
                )
            }
            "PQ-authenticated" => {
                assert!(
                    pq.starts_with("confidentiality and authentication"),
                    "{}",
                    p.name
                )
            }
            other => panic!("{}: family {other} not covered", p.name),
        }
    }
}

/// The legacy baselines are off by default: a default build neither lists
/// nor runs them (protocols/rsa-kt.md, protocols/ffdh.md).
#[cfg(not(any(feature = "rsa-kt", feature = "ffdh")))]
#[test]
fn legacy_baselines_are_off_by_default() {
    for name in [
        "akex-rsa3072-oaep-kt-not-forward-secret-chachapoly-sha256",
        "akex-ffdh-nk-ffdhe3072-legacy-chachapoly-sha256",
    ] {
        assert!(registry::info(name).is_none(), "{name}");
        assert!(
            registry::initiator(name, &HandshakeKeys::new()).is_err(),
            "{name}"
        );
        assert!(
            registry::responder(&[name], &HandshakeKeys::new()).is_err(),
            "{name}"
        );
    }
}

/// "Noise mode has no ratchet": a ratchet setting for a Noise session is a
/// configuration error, and a ratchet step cannot be started.
#[test]
fn noise_mode_sessions_have_no_ratchet() {
    use akex::session::SessionConfig;
    let name = "Noise_NN_25519_ChaChaPoly_BLAKE2s";
    let (_, a, _) = session(name);
    let config = SessionConfig::new().ratchet_every(std::time::Duration::from_secs(60));
    assert!(matches!(
        Session::with_config(a, config),
        Err(akex::Error::Config(_))
    ));
    let (_, a, _) = session(name);
    let mut s = Session::new(a);
    assert!(s
        .start_ratchet(&mut akex::crypto::OsRng, &mut Vec::new())
        .is_err());
}

/// A replayed first message is accepted again by a fresh responder (the
/// specs say so for the IK and NK shapes: its payload is replayable), but
/// the responder's fresh ephemeral makes a new session whose keys the
/// replayer cannot follow: a record of the recorded session never opens
/// in it.
#[test]
fn a_replayed_first_message_leads_to_fresh_keys() {
    use akex::handshake::hybrid::{HYBRID_IK, HYBRID_NK, HYBRID_XX};
    for name in [
        NOISE_IK,
        HYBRID_XX,
        HYBRID_IK,
        HYBRID_NK,
        akex::handshake::pq::PQ_IK,
    ] {
        let (run, ie, re) = session(name);
        let mut fresh = build(name, Role::Responder, &side(name, Role::Responder));
        let mut payload = Vec::new();
        fresh
            .read_message(&run.messages[0].1, &mut payload)
            .unwrap();
        assert_eq!(
            payload, b"payload 0",
            "{name}: the replayed payload is taken again"
        );
        let mut m2 = Vec::new();
        fresh.write_message(b"", &mut m2).unwrap();
        assert_ne!(
            m2[..32],
            run.messages[1].1[..32],
            "{name}: a fresh ephemeral"
        );
        if fresh.is_finished() {
            let replayed = fresh.finish().unwrap();
            assert_ne!(replayed.handshake_hash(), re.handshake_hash(), "{name}");
            let mut record = Vec::new();
            Session::new(ie).seal(b"recorded", &mut record).unwrap();
            assert!(
                Session::new(replayed)
                    .open(&record, &mut Vec::new())
                    .is_err(),
                "{name}"
            );
        }
    }
}

/// docs/security.md, "CI checks on dependencies": `.ci/run` checks
/// licenses against deny.toml's allow-list, tries advisories, fails on a
/// found advisory and reports a failed fetch as skipped.
#[test]
fn ci_checks_licenses_and_reports_skipped_advisories() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let ci = std::fs::read_to_string(root.join(".ci/run")).unwrap();
    for needle in [
        "cargo install --locked cargo-deny",
        "cargo deny --log-level error check licenses",
        "cargo deny check advisories",
        "error\\[(vulnerability|unsound|unmaintained|notice|yanked)\\]",
        "advisories: SKIPPED",
    ] {
        assert!(ci.contains(needle), "{needle} missing from .ci/run");
    }
    let deny = std::fs::read_to_string(root.join("deny.toml")).unwrap();
    let licenses = deny.split("[licenses]").nth(1).expect("a [licenses] table");
    assert!(licenses.contains("allow = ["), "an allow-list");
    assert!(!licenses.contains("\"GPL"), "permissive licenses only");
}
