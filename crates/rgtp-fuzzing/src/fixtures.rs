//! Small real exposures, built once per process with the real providers, that the
//! `puller` and `exposer` targets (and the seed generator) share.

use std::sync::{Arc, OnceLock};

use rgtp_proto::exposer::Exposure;
use rgtp_proto::{CipherId, FecParams, FecScheme, HashId, Key, KeyMode};
use rgtp_providers::{AnyCipher, AnyFec, AnyHash};
use rgtp_wire::{ChunkData, ChunkDataWithProof, FecParity, Repr, HASH_LEN};

/// How one fixture exposure is prepared.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// AEAD.
    pub cipher: CipherId,
    /// Merkle hash.
    pub hash: HashId,
    /// FEC.
    pub fec: FecParams,
    /// Proofs announced in the Manifest.
    pub proofs: bool,
    /// Plaintext bytes per chunk.
    pub chunk_size: u32,
    /// Plaintext bytes.
    pub total: usize,
}

const fn fec(scheme: FecScheme, n: u8, k: u8) -> FecParams {
    FecParams { scheme, n, k }
}

/// The fixture shapes: every cipher, hash and FEC scheme, short last chunks,
/// partial last blocks, one chunk, and no chunk at all.
pub const SHAPES: &[Shape] = &[
    Shape {
        cipher: CipherId::ChaCha20Poly1305,
        hash: HashId::Blake2b256,
        fec: FecParams::NONE,
        proofs: false,
        chunk_size: 32,
        total: 200,
    },
    Shape {
        cipher: CipherId::Aes256Gcm,
        hash: HashId::Sha256,
        fec: fec(FecScheme::ReedSolomon, 6, 4),
        proofs: true,
        chunk_size: 16,
        total: 150,
    },
    Shape {
        cipher: CipherId::ChaCha20Poly1305,
        hash: HashId::Blake3,
        fec: fec(FecScheme::RaptorQ, 7, 4),
        proofs: false,
        chunk_size: 24,
        total: 100,
    },
    Shape {
        cipher: CipherId::Aes256Gcm,
        hash: HashId::Blake2b256,
        fec: fec(FecScheme::ReedSolomon, 3, 2),
        proofs: false,
        chunk_size: 1,
        total: 5,
    },
    Shape {
        cipher: CipherId::ChaCha20Poly1305,
        hash: HashId::Sha256,
        fec: FecParams::NONE,
        proofs: true,
        chunk_size: 64,
        total: 64,
    },
    Shape {
        cipher: CipherId::Aes256Gcm,
        hash: HashId::Sha256,
        fec: fec(FecScheme::RaptorQ, 5, 2),
        proofs: false,
        chunk_size: 8,
        total: 0,
    },
];

/// One prepared fixture: the plaintext, the key and the sealed exposure.
pub struct Fixture {
    /// Its shape.
    pub shape: Shape,
    /// The plaintext.
    pub data: Vec<u8>,
    /// The key.
    pub key: Key,
    /// The sealed exposure.
    pub exposure: Arc<Exposure>,
}

/// The key of fixture `i`.
pub fn key_of(i: usize) -> Key {
    Key::from_bytes([0x40 + i as u8; 32])
}

/// The Exposure_ID of fixture `i`.
pub fn id_of(i: usize) -> [u8; 16] {
    let mut id = [0xe0; 16];
    id[15] = i as u8;
    id
}

/// The plaintext of fixture `i`: a fixed pattern that differs per chunk.
pub fn data_of(i: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|j| {
            (j as u32)
                .wrapping_mul(2_654_435_761)
                .rotate_left(i as u32 + 7) as u8
        })
        .collect()
}

fn build(i: usize, shape: Shape) -> Fixture {
    let data = data_of(i, shape.total);
    let key = key_of(i);
    let cipher = AnyCipher::new(shape.cipher, &key).expect("cipher");
    let hash = AnyHash::new(shape.hash).expect("hash");
    let codec = AnyFec::new(shape.fec).expect("fec params");
    let exposure = Exposure::build(
        id_of(i),
        &data,
        shape.chunk_size,
        &cipher,
        // Under the fixture key itself: every fixture has its own key, and the
        // corpora keep their Manifest flags.
        KeyMode::Raw,
        &hash,
        &codec,
        shape.proofs,
    )
    .expect("fixture exposure");
    Fixture {
        shape,
        data,
        key,
        exposure: Arc::new(exposure),
    }
}

/// All fixtures, built on first use.
pub fn all() -> &'static [Fixture] {
    static ALL: OnceLock<Vec<Fixture>> = OnceLock::new();
    ALL.get_or_init(|| {
        SHAPES
            .iter()
            .enumerate()
            .map(|(i, s)| build(i, *s))
            .collect()
    })
}

impl Fixture {
    /// Plaintext of chunk `i`.
    pub fn plain(&self, i: u32) -> &[u8] {
        let cs = self.shape.chunk_size as usize;
        let start = i as usize * cs;
        &self.data[start..(start + cs).min(self.data.len())]
    }

    /// The emitted Chunk_Data (or, with `proof`, Chunk_Data_With_Proof) of chunk `i`.
    pub fn chunk_packet(&self, i: u32, proof: bool) -> Vec<u8> {
        let x = &self.exposure;
        if !proof {
            return emit(&Repr::ChunkData(ChunkData {
                exposure_id: *x.id(),
                chunk_index: i,
                payload: x.ciphertext(i),
            }));
        }
        let mut p = vec![0u8; x.tree().depth() * HASH_LEN];
        x.tree().write_proof(i, &mut p);
        emit(&Repr::ChunkDataWithProof(ChunkDataWithProof {
            exposure_id: *x.id(),
            chunk_index: i,
            proof: &p,
            payload: x.ciphertext(i),
        }))
    }

    /// The emitted FEC_Parity of parity shard `p` of `block`.
    pub fn parity_packet(&self, block: u32, p: u8) -> Vec<u8> {
        let x = &self.exposure;
        emit(&Repr::FecParity(FecParity {
            exposure_id: *x.id(),
            block_index: block,
            parity_index: p,
            fec_n: self.shape.fec.n,
            fec_k: self.shape.fec.k,
            payload: x.parity(block, p),
        }))
    }

    /// The emitted Manifest, with an optional token.
    pub fn manifest_packet(&self, token: Option<[u8; 16]>) -> Vec<u8> {
        let mut m = self.exposure.manifest();
        if let Some(t) = token {
            m.flags |= rgtp_wire::ManifestFlags::TOKEN;
            m.token = Some(t);
        }
        emit(&Repr::Manifest(m))
    }

    /// A key holder's chunk `i`: sealed under the fixture key (the chunk key of these
    /// raw-key fixtures), holding `plain` instead of the real bytes, without a proof.
    pub fn forged_chunk_packet(&self, i: u32, plain: &[u8]) -> Vec<u8> {
        use rgtp_proto::CipherSuite;
        let cipher = AnyCipher::new(self.shape.cipher, &self.key).expect("cipher");
        let mut payload = plain.to_vec();
        let tag = cipher.seal(i, &mut payload).expect("seal");
        payload.extend_from_slice(&tag);
        emit(&Repr::ChunkData(ChunkData {
            exposure_id: *self.exposure.id(),
            chunk_index: i,
            payload: &payload,
        }))
    }

    /// Parity shards per block.
    pub fn parity_count(&self) -> u8 {
        self.shape.fec.n.saturating_sub(self.shape.fec.k)
    }
}

/// The fixture's Manifest announcing proofs, whatever its shape.
pub fn manifest_packet_with_proofs(fx: &Fixture) -> Vec<u8> {
    let mut m = fx.exposure.manifest();
    m.flags |= rgtp_wire::ManifestFlags::PROOFS;
    emit(&Repr::Manifest(m))
}

/// Emits a repr into a fresh buffer.
pub fn emit(r: &Repr<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; r.buffer_len()];
    r.emit(&mut buf);
    buf
}
