//! Known-answer tests: `spec/vectors/aead.txt` and `spec/vectors/merkle.txt`,
//! written by `spec/vectors/gen/crypto_vectors.py` from independent Python
//! implementations (`cryptography`, `hashlib`, `blake3`), and
//! `spec/vectors/keys.txt`, written by `spec/vectors/gen/key_vectors.py`
//! (`cryptography`'s HKDF).

use rgtp_proto::crypto::{
    chunk_nonce, derive_chunk_key, CipherId, CipherSuite, Key, KeyMode, CHUNK_KEY_INFO, TAG_LEN,
};
use rgtp_proto::merkle::{proof_depth, root_of, verify_proof, HashId, MerkleScheme, MerkleTree};
use rgtp_providers::{AnyCipher, AnyHash, Backend};

const AEAD: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../spec/vectors/aead.txt"
));
const KEYS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../spec/vectors/keys.txt"
));
const MERKLE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../spec/vectors/merkle.txt"
));

/// Records of `name = value` lines separated by blank lines; `#` lines skipped.
fn records(text: &str) -> Vec<Vec<(&str, &str)>> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        if line.trim().is_empty() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        let (k, v) = line.split_once('=').expect("`name = value` line");
        cur.push((k.trim(), v.trim()));
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn field<'a>(rec: &[(&str, &'a str)], name: &str) -> &'a str {
    rec.iter()
        .find(|(k, _)| *k == name)
        .unwrap_or_else(|| panic!("missing field {name}"))
        .1
}

fn hash32(s: &str) -> [u8; 32] {
    hex::decode(s)
        .expect("hex")
        .try_into()
        .expect("32-byte hash")
}

#[test]
fn aead_known_answers() {
    let recs = records(AEAD);
    assert_eq!(
        recs.len(),
        2 * 4 * 3,
        "both suites x 4 indices x 3 plaintexts"
    );
    for rec in &recs {
        let id = CipherId::from_name(field(rec, "suite")).expect("known suite");
        let key = Key::from_bytes(hash32(field(rec, "key")));
        let index: u32 = field(rec, "index").parse().expect("u32 index");
        let nonce = hex::decode(field(rec, "nonce")).unwrap();
        let plaintext = hex::decode(field(rec, "plaintext")).unwrap();
        let sealed = hex::decode(field(rec, "sealed")).unwrap();
        let what = format!(
            "{} index {index} {}",
            id.name(),
            field(rec, "plaintext-label")
        );
        assert_eq!(chunk_nonce(index).to_vec(), nonce, "{what}");

        for backend in backends() {
            let what = format!("{what} on {backend}");
            let cipher = AnyCipher::with_backend(id, backend, &key).unwrap();
            assert_eq!(cipher.backend(), backend);
            let mut data = plaintext.clone();
            let tag = cipher.seal(index, &mut data).unwrap();
            data.extend_from_slice(&tag);
            assert_eq!(hex::encode(&data), hex::encode(&sealed), "{what}");

            let (ct, tag) = sealed.split_at(sealed.len() - TAG_LEN);
            let mut data = ct.to_vec();
            cipher
                .open(index, &mut data, tag.try_into().unwrap())
                .unwrap();
            assert_eq!(data, plaintext, "{what}");
        }
    }
}

/// Every cipher backend this build holds.
fn backends() -> impl Iterator<Item = Backend> {
    Backend::ALL.into_iter().filter(|b| b.built())
}

#[test]
fn chunk_key_known_answers() {
    let recs = records(KEYS);
    assert_eq!(recs.len(), 5);
    for rec in &recs {
        let what = field(rec, "label");
        let key = Key::from_bytes(hash32(field(rec, "key")));
        let id: [u8; 16] = hex::decode(field(rec, "exposure-id"))
            .unwrap()
            .try_into()
            .expect("16-byte Exposure_ID");
        assert_eq!(field(rec, "info"), hex::encode(CHUNK_KEY_INFO), "{what}");
        let chunk_key = derive_chunk_key(&key, &id);
        assert_eq!(
            hex::encode(chunk_key.as_bytes()),
            field(rec, "chunk-key"),
            "{what}"
        );
        assert_eq!(KeyMode::Derived.chunk_key(&key, &id), chunk_key, "{what}");
        let plaintext = hex::decode(field(rec, "plaintext")).unwrap();
        for (id_, backend) in [CipherId::Aes256Gcm, CipherId::ChaCha20Poly1305]
            .into_iter()
            .flat_map(|id_| backends().map(move |b| (id_, b)))
        {
            let cipher = AnyCipher::with_backend(id_, backend, &chunk_key).unwrap();
            let mut data = plaintext.clone();
            let tag = cipher.seal(0, &mut data).unwrap();
            data.extend_from_slice(&tag);
            let want = field(rec, &format!("sealed-{}", id_.name()));
            assert_eq!(hex::encode(&data), want, "{what} {} {backend}", id_.name());
        }
    }
}

/// One Merkle record: hash, chunks, leaves, proofs, root.
struct MerkleCase {
    hash: HashId,
    chunks: Vec<Vec<u8>>,
    leaves: Vec<[u8; 32]>,
    proofs: Vec<Vec<[u8; 32]>>,
    root: [u8; 32],
}

fn merkle_cases() -> Vec<MerkleCase> {
    records(MERKLE)
        .iter()
        .map(|rec| {
            let mut case = MerkleCase {
                hash: HashId::from_name(field(rec, "hash")).expect("known hash"),
                chunks: Vec::new(),
                leaves: Vec::new(),
                proofs: Vec::new(),
                root: hash32(field(rec, "root")),
            };
            for (k, v) in rec {
                match *k {
                    "chunk" => case.chunks.push(hex::decode(v).unwrap()),
                    "leaf" => case.leaves.push(hash32(v)),
                    "proof" => case.proofs.push(v.split_whitespace().map(hash32).collect()),
                    _ => {}
                }
            }
            let count: usize = field(rec, "chunk-count").parse().unwrap();
            assert_eq!(case.chunks.len(), count);
            assert_eq!(case.leaves.len(), count);
            assert_eq!(case.proofs.len(), count);
            case
        })
        .collect()
}

#[test]
fn merkle_known_answers() {
    let cases = merkle_cases();
    assert_eq!(cases.len(), 3 * 6, "3 hashes x 6 chunk counts");
    for case in &cases {
        let scheme = AnyHash::new(case.hash).expect("built in");
        assert_eq!(scheme.id(), case.hash);
        let n = case.chunks.len() as u32;
        let what = format!("{} with {n} chunks", case.hash.name());

        let leaves: Vec<[u8; 32]> = case.chunks.iter().map(|c| scheme.leaf(c)).collect();
        assert_eq!(leaves, case.leaves, "{what}: leaves");
        // The batch path (several messages at once) gives the same answers.
        let bodies: Vec<&[u8]> = case.chunks.iter().map(|c| &c[..]).collect();
        let mut batched = vec![[0u8; 32]; bodies.len()];
        scheme.leaves(&bodies, &mut batched);
        assert_eq!(batched, case.leaves, "{what}: leaves in a batch");

        let tree = MerkleTree::from_leaves(&scheme, leaves.clone());
        assert_eq!(tree.root(), case.root, "{what}: tree root");
        assert_eq!(root_of(&scheme, &leaves), case.root, "{what}: root_of");
        assert_eq!(tree.leaf_count(), n);
        assert_eq!(tree.depth(), proof_depth(n));
        if n == 0 {
            assert_eq!(case.root, scheme.leaf(&[]), "{what}: empty root");
        }

        for (i, proof) in case.proofs.iter().enumerate() {
            let i = i as u32;
            assert_eq!(proof.len(), proof_depth(n), "{what}: depth");
            let mine: Vec<[u8; 32]> = tree.siblings(i).copied().collect();
            assert_eq!(&mine, proof, "{what}: proof {i}");
            let mut buf = vec![0xa5; 32 * tree.depth()];
            tree.write_proof(i, &mut buf);
            assert_eq!(buf, proof.concat(), "{what}: written proof {i}");
            assert!(
                verify_proof(&scheme, &leaves[i as usize], i, n, proof.iter(), &case.root),
                "{what}: verify {i}"
            );
        }
    }
}
