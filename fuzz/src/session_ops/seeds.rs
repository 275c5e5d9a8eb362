//! The committed seeds of `session_ops`: an ordered and a hostile script
//! for each configuration, with the progress each must reach.

use super::op::{Op, Side};
use super::{leak, Progress, Seed};

/// Seeds for `session_ops`: for each configuration, data both ways in
/// order, a rekey, a reordered, a replayed and a tampered record, a
/// ratchet step with its replies, and a close.
pub fn session_ops_seeds() -> Vec<Seed> {
    use Op::*;
    use Side::{A, B};
    let names = [
        "noise-chachapoly",
        "noise-aesgcm-rekey3",
        "akex-chachapoly",
        "akex-aesgcm-hybrid-limited",
        "datagram-chachapoly",
        "datagram-aesgcm-hybrid-limited",
    ];
    let script = [
        Seal { from: A, len: 5 },
        Seal { from: A, len: 0 },
        Seal { from: B, len: 100 },
        Deliver { to: B },
        Deliver { to: A },
        Rekey { from: A },
        Seal { from: A, len: 1000 },
        Deliver { to: B },
        Deliver { to: B },
        Seal { from: A, len: 7 },
        Seal { from: A, len: 8 },
        Ratchet { from: A },
        Deliver { to: B },
        Poll { side: B, secs: 0 },
        Deliver { to: A },
        Poll { side: A, secs: 0 },
        Deliver { to: B },
        Seal { from: A, len: 9 },
        Deliver { to: B },
        Deliver { to: B },
        Poll { side: B, secs: 1 },
        Deliver { to: A },
        Deliver { to: A },
        Poll { side: A, secs: 1 },
        Deliver { to: B },
        Deliver { to: B },
        Deliver { to: B },
        Seal { from: B, len: 3 },
        Seal { from: A, len: 4 },
        Deliver { to: A },
        Deliver { to: B },
        Message { from: A, len: 5 },
        Deliver { to: B },
        Close { from: B },
        Deliver { to: A },
    ];
    let p = |finished, records| Progress {
        answered: records > 0,
        finished,
        records,
    };
    // Records opened per configuration. Ordered: Noise mode has no key
    // update, ratchet, control or close records (9 data records); akex
    // mode adds a key update, the ratchet init, response and finish, a
    // control record and the close (15); datagrams need no key update
    // record (14); with the limits lowered to 12 records, a key takes at
    // most 4 data records (8 are kept for control records), so one data
    // record is refused (14, 13).
    // Hostile: Noise opens the first record and the original of the
    // tampered one; akex mode opens the first and dies on the reordered
    // copy; datagrams also accept the reordered record and the one after
    // the loss.
    let ordered = [
        p(false, 9),
        p(false, 9),
        p(true, 15),
        p(true, 14),
        p(true, 14),
        p(true, 13),
    ];
    let hostile = [
        p(false, 2),
        p(false, 2),
        p(false, 1),
        p(false, 1),
        p(false, 4),
        p(false, 4),
    ];
    let mut seeds = Vec::new();
    for (index, name) in names.iter().enumerate() {
        let mut data = vec![index as u8];
        for op in script {
            op.encode(&mut data);
        }
        let expect = ordered[index];
        seeds.push(Seed {
            name: leak(format!("{name}-ordered")),
            data,
            expect,
        });
        // Reordering, replay and tampering (the session reacts as its mode says).
        let mut data = vec![index as u8];
        for op in [
            Seal { from: A, len: 16 },
            Seal { from: A, len: 17 },
            Seal { from: A, len: 18 },
            Deliver { to: B },
            Inject { to: B, index: 2 },
            Tamper {
                to: B,
                pos: 40,
                xor: 0x80,
            },
            Inject { to: B, index: 0 },
            Deliver { to: B },
            Drop { to: B },
            Seal { from: A, len: 19 },
            Deliver { to: B },
            Inject { to: B, index: 2 },
        ] {
            op.encode(&mut data);
        }
        data.extend_from_slice(&[9, 1, 20]);
        data.extend_from_slice(&[0xa5; 20]);
        let expect = hostile[index];
        seeds.push(Seed {
            name: leak(format!("{name}-hostile")),
            data,
            expect,
        });
    }
    seeds
}
