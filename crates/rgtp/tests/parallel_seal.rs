//! Sealing on every core gives the exposure sealing on one gives, byte for byte.

use rgtp::verify::{output_leaves, seal_and_hash_parallel, seal_parallel, tree_parallel};
use rgtp_proto::exposer::seal_chunks;
use rgtp_proto::fec::NoFec;
use rgtp_proto::{CipherId, CipherSuite, Exposure, Key, KeyMode, MerkleScheme};
use rgtp_providers::cipher::AnyCipher;
use rgtp_providers::hash::Blake3;

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + i / 977) as u8).collect()
}

#[test]
fn parallel_sealing_matches_serial_sealing() {
    let key = Key::from_bytes([7; 32]);
    let cipher = AnyCipher::new(CipherId::ChaCha20Poly1305, &key).expect("cipher");
    // Above the threshold for threads, with a short last chunk, and an odd chunk size
    // so thread boundaries fall mid-way through the data.
    for (len, chunk) in [
        (9 << 20 | 777, 1200u32),
        (5 << 20, 1000),
        (4 << 20, 4096),
        // Below the threshold for threads: one pass on this thread.
        (100_000, 1200),
    ] {
        let d = data(len);
        let store_len = Exposure::store_len(len as u64, chunk);
        let mut serial = vec![0u8; store_len];
        seal_chunks(&cipher, &[1; 16], &d, chunk, 0, &mut serial).expect("serial");
        let mut parallel = vec![0u8; store_len];
        seal_parallel(&cipher, &[1; 16], &d, chunk, &mut parallel).expect("parallel");
        assert!(serial == parallel, "{len} bytes in {chunk}-byte chunks");
        // Sealing and hashing in one pass: the same store, and the leaves one by one.
        let mut fused = vec![0u8; store_len];
        let mut fused_leaves = vec![[0u8; 32]; len.div_ceil(chunk as usize)];
        seal_and_hash_parallel(
            &cipher,
            &[1; 16],
            &Blake3,
            &d,
            chunk,
            &mut fused,
            &mut fused_leaves,
        )
        .expect("fused");
        assert!(serial == fused, "{len} bytes in {chunk}-byte chunks, fused");
        let one_by_one: Vec<_> = d.chunks(chunk as usize).map(|c| Blake3.leaf(c)).collect();
        assert_eq!(
            fused_leaves, one_by_one,
            "{len} bytes in {chunk}-byte chunks, leaves"
        );

        // And the exposure from it is the one `build` makes.
        let built = Exposure::build(
            [1; 16],
            &d,
            chunk,
            &cipher,
            KeyMode::Raw,
            &Blake3,
            &NoFec,
            false,
        )
        .expect("build");
        let leaves = output_leaves(&Blake3, &d, chunk);
        assert_eq!(leaves.len(), built.chunk_count() as usize);
        assert_eq!(leaves[0], Blake3.leaf(&d[..chunk as usize]));
        let assembled = Exposure::from_sealed(
            [1; 16],
            len as u64,
            chunk,
            cipher.id(),
            KeyMode::Raw,
            &Blake3,
            &NoFec,
            false,
            Box::new(parallel),
            tree_parallel(&Blake3, leaves),
        )
        .expect("from_sealed");
        assert_eq!(assembled.root(), built.root());
        for i in [0, built.chunk_count() / 2, built.chunk_count() - 1] {
            assert_eq!(assembled.ciphertext(i), built.ciphertext(i));
            assert_eq!(assembled.packet(i), built.packet(i));
        }
    }
}

#[test]
fn from_sealed_refuses_a_wrong_leaf_count_or_store() {
    let key = Key::from_bytes([8; 32]);
    let cipher = AnyCipher::new(CipherId::Aes256Gcm, &key).expect("cipher");
    let d = data(10_000);
    let store = vec![0u8; Exposure::store_len(10_000, 1000)];
    let e = Exposure::from_sealed(
        [2; 16],
        10_000,
        1000,
        cipher.id(),
        KeyMode::Raw,
        &Blake3,
        &NoFec,
        false,
        Box::new(store),
        tree_parallel(&Blake3, output_leaves(&Blake3, &d[..9000], 1000)),
    );
    assert!(matches!(
        e,
        Err(rgtp_proto::exposer::BuildError::LeafCount {
            needed: 10,
            given: 9
        })
    ));
    let e = Exposure::from_sealed(
        [2; 16],
        10_000,
        1000,
        cipher.id(),
        KeyMode::Raw,
        &Blake3,
        &NoFec,
        false,
        Box::new(vec![0u8; 10]),
        tree_parallel(&Blake3, output_leaves(&Blake3, &d, 1000)),
    );
    assert!(matches!(
        e,
        Err(rgtp_proto::exposer::BuildError::StoreSize { .. })
    ));
}

#[test]
fn a_tree_built_on_every_core_is_the_serial_tree() {
    for n in [1usize, 2, 3, 1 << 15, (1 << 16) + 3, 200_001] {
        let leaves: Vec<_> = (0..n)
            .map(|i| Blake3.leaf(&(i as u64).to_le_bytes()))
            .collect();
        let serial = rgtp_proto::MerkleTree::from_leaves(&Blake3, leaves.clone());
        let parallel = tree_parallel(&Blake3, leaves);
        assert_eq!(serial.root(), parallel.root(), "{n} leaves");
        assert_eq!(serial.depth(), parallel.depth());
        let last = n as u32 - 1;
        let a: Vec<_> = serial.siblings(last).collect();
        let b: Vec<_> = parallel.siblings(last).collect();
        assert_eq!(a, b, "{n} leaves");
    }
}
