//! The builder: assembles an exposure from one provider per layer.
//!
//! Each `with_*` call replaces one type parameter, in the manner of
//! s2n-quic's providers: pass a [`CipherId`]/[`HashId`]/[`FecSpec`] to choose
//! at run time, or your own provider to plug in a new implementation.
//! [`ExposerBuilder::expose`] validates the combination and does all the
//! cryptographic work once.

use std::net::SocketAddr;
use std::sync::Arc;

use redgiant_base::link::LentMemory;
use rgtp_proto::exposer::{BuildError, ChunkStore, MAX_CHUNK_SIZE};
use rgtp_proto::{
    CipherId, CipherSuite, Exposer, ExposerConfig, Exposure, FecCodec, HashId, Key, KeyMode,
    MerkleScheme,
};
use rgtp_providers::{AnyCipher, AnyFec, AnyHash, Backend, NotBuilt, Provider};
use rgtp_wire::ExposureId;

use crate::raw_keys;
use crate::suite::FecSpec;
use crate::ticket::{host_of, Ticket};

/// Why an exposure could not be started; each names what to change.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// Chunk size out of range.
    #[error("chunk size {0} is out of range: use 1..={MAX_CHUNK_SIZE} (default 1200)")]
    ChunkSize(u32),
    /// The cipher provider refused.
    #[error("cipher {0} is not available")]
    Cipher(String),
    /// The hash provider refused.
    #[error("Merkle hash {0} is not available")]
    Hash(String),
    /// The cipher, hash or FEC scheme asked for is left out of this build.
    #[error(transparent)]
    NotBuilt(#[from] NotBuilt),
    /// The FEC provider refused.
    #[error("FEC setting rejected: {0}")]
    Fec(String),
    /// Building failed.
    #[error("could not prepare the exposure: {0}")]
    Build(#[from] BuildError),
    /// Memory for the ciphertext could not be had.
    #[error("could not allocate {0} bytes for the ciphertext store: {1}")]
    Alloc(usize, std::io::Error),
    /// A raw-key exposure ([`ExposerBuilder::dangerous_raw_key`]) was asked for
    /// with a key this process already sealed other data with in that mode.
    #[error(
        "this key already sealed other data as a raw-key exposure in this process; \
         reusing it would reuse every nonce (spec §6.6): use a fresh key, or drop the \
         raw-key mode"
    )]
    RawKeyReused,
    /// The key and Exposure_ID ([`ExposerBuilder::with_exposure_id`]) already sealed
    /// other data in this process: the chunk key derived from them would be reused.
    #[error(
        "this key and Exposure_ID already sealed other data in this process; the chunk \
         key derived from them would reuse every nonce (spec §6.6): use a fresh \
         Exposure_ID or key"
    )]
    ExposureIdReused,
}

/// Supplies the cipher once the key is known.
pub trait CipherProvider {
    /// The cipher.
    type Cipher: CipherSuite;
    /// Builds it.
    fn start(self, key: &Key) -> Result<Self::Cipher, StartError>;

    /// The suite it will build, when known before the key (needed for a stable
    /// Exposure_ID, [`ExposerBuilder::with_stable_exposure_id`]).
    fn cipher_id(&self) -> Option<CipherId> {
        None
    }
}

impl CipherProvider for CipherId {
    type Cipher = AnyCipher;
    fn cipher_id(&self) -> Option<CipherId> {
        Some(*self)
    }
    fn start(self, key: &Key) -> Result<AnyCipher, StartError> {
        Provider::Cipher(self).check()?;
        AnyCipher::new(self, key).ok_or_else(|| StartError::Cipher(self.name().into()))
    }
}

/// A suite on a named backend: `(CipherId::Aes256Gcm, Backend::RustCrypto)`.
/// A bare [`CipherId`] takes the preferred one ([`Backend::preferred`]).
impl CipherProvider for (CipherId, Backend) {
    type Cipher = AnyCipher;
    fn cipher_id(&self) -> Option<CipherId> {
        Some(self.0)
    }
    fn start(self, key: &Key) -> Result<AnyCipher, StartError> {
        let (id, backend) = self;
        Provider::Cipher(id).check()?;
        AnyCipher::with_backend(id, backend, key)
            .ok_or_else(|| StartError::Cipher(format!("{} on {backend}", id.name())))
    }
}

/// A cipher constructor as a provider: `Custom(|key| MyCipher::new(key))`.
pub struct Custom<F>(pub F);

impl<C: CipherSuite, F: FnOnce(&Key) -> C> CipherProvider for Custom<F> {
    type Cipher = C;
    fn start(self, key: &Key) -> Result<C, StartError> {
        Ok((self.0)(key))
    }
}

/// Supplies the Merkle hash.
pub trait HashProvider {
    /// The scheme.
    type Hash: MerkleScheme;
    /// Builds it.
    fn start(self) -> Result<Self::Hash, StartError>;
}

impl HashProvider for HashId {
    type Hash = AnyHash;
    fn start(self) -> Result<AnyHash, StartError> {
        Provider::Hash(self).check()?;
        AnyHash::new(self).ok_or_else(|| StartError::Hash(self.name().into()))
    }
}

/// Any scheme value as a provider.
pub struct Scheme<M>(pub M);

impl<M: MerkleScheme> HashProvider for Scheme<M> {
    type Hash = M;
    fn start(self) -> Result<M, StartError> {
        Ok(self.0)
    }
}

/// Supplies the FEC codec.
pub trait FecProvider {
    /// The codec.
    type Fec: FecCodec;
    /// Builds it.
    fn start(self) -> Result<Self::Fec, StartError>;
}

impl FecProvider for FecSpec {
    type Fec = AnyFec;
    fn start(self) -> Result<AnyFec, StartError> {
        let p = self.params().map_err(StartError::Fec)?;
        Provider::Fec(p.scheme).check()?;
        AnyFec::new(p).map_err(|e| StartError::Fec(e.to_string()))
    }
}

/// Any codec value as a provider.
pub struct Codec<F>(pub F);

impl<F: FecCodec> FecProvider for Codec<F> {
    type Fec = F;
    fn start(self) -> Result<F, StartError> {
        Ok(self.0)
    }
}

/// Our default cipher (spec §4.3 gives the measurements behind it).
pub const DEFAULT_CIPHER: CipherId = CipherId::Aes256Gcm;
/// Our default Merkle hash (spec §4.3).
pub const DEFAULT_HASH: HashId = HashId::Sha256;
/// Default chunk size over UDP (upstream §8).
pub const DEFAULT_CHUNK_SIZE: u32 = 1200;

/// Assembles an exposure.
pub struct ExposerBuilder<C = CipherId, H = HashId, F = FecSpec> {
    cipher: C,
    hash: H,
    fec: F,
    proofs: bool,
    chunk_size: u32,
    key: Option<Key>,
    key_mode: KeyMode,
    exposure_id: Option<ExposureId>,
    stable_id: bool,
    config: ExposerConfig,
    token_secret: TokenSecret,
    /// Claim the chunk key in the process registry (see [`raw_keys`]).
    claim_key: bool,
}

/// Where the address-validation token secret comes from (spec §5.3).
#[derive(Clone, Default)]
enum TokenSecret {
    /// `config.token_secret` if set, else drawn from the operating system's CSPRNG.
    #[default]
    Random,
    /// Given by the caller (a replay, a simulation).
    Given([u8; 32]),
    /// Derived from the key and Exposure_ID: every ticket holder can mint tokens.
    DangerousFromKey,
}

impl Default for ExposerBuilder {
    fn default() -> Self {
        ExposerBuilder {
            cipher: DEFAULT_CIPHER,
            hash: DEFAULT_HASH,
            fec: FecSpec::None,
            proofs: false,
            chunk_size: DEFAULT_CHUNK_SIZE,
            key: None,
            key_mode: KeyMode::Derived,
            exposure_id: None,
            stable_id: false,
            config: ExposerConfig::default(),
            token_secret: TokenSecret::Random,
            claim_key: true,
        }
    }
}

impl ExposerBuilder {
    /// Our defaults: AES-256-GCM, SHA-256, no FEC, no proofs, 1200-byte chunks.
    pub fn new() -> Self {
        Self::default()
    }

    /// The upstream default suite (Manifest flags 0): ChaCha20-Poly1305 and BLAKE2b-256.
    pub fn upstream() -> Self {
        Self::default()
            .with_cipher(CipherId::ChaCha20Poly1305)
            .with_hash(HashId::Blake2b256)
    }
}

impl<C: CipherProvider, H: HashProvider, F: FecProvider> ExposerBuilder<C, H, F> {
    /// Replaces the cipher layer.
    pub fn with_cipher<C2: CipherProvider>(self, cipher: C2) -> ExposerBuilder<C2, H, F> {
        ExposerBuilder {
            cipher,
            hash: self.hash,
            fec: self.fec,
            proofs: self.proofs,
            chunk_size: self.chunk_size,
            key: self.key,
            key_mode: self.key_mode,
            exposure_id: self.exposure_id,
            stable_id: self.stable_id,
            config: self.config,
            token_secret: self.token_secret,
            claim_key: self.claim_key,
        }
    }

    /// Replaces the Merkle layer.
    pub fn with_hash<H2: HashProvider>(self, hash: H2) -> ExposerBuilder<C, H2, F> {
        ExposerBuilder {
            cipher: self.cipher,
            hash,
            fec: self.fec,
            proofs: self.proofs,
            chunk_size: self.chunk_size,
            key: self.key,
            key_mode: self.key_mode,
            exposure_id: self.exposure_id,
            stable_id: self.stable_id,
            config: self.config,
            token_secret: self.token_secret,
            claim_key: self.claim_key,
        }
    }

    /// Replaces the FEC layer.
    pub fn with_fec<F2: FecProvider>(self, fec: F2) -> ExposerBuilder<C, H, F2> {
        ExposerBuilder {
            cipher: self.cipher,
            hash: self.hash,
            fec,
            proofs: self.proofs,
            chunk_size: self.chunk_size,
            key: self.key,
            key_mode: self.key_mode,
            exposure_id: self.exposure_id,
            stable_id: self.stable_id,
            config: self.config,
            token_secret: self.token_secret,
            claim_key: self.claim_key,
        }
    }

    /// Serve every chunk with its Merkle proof.
    pub fn with_proofs(mut self, proofs: bool) -> Self {
        self.proofs = proofs;
        self
    }

    /// Plaintext bytes per chunk.
    pub fn with_chunk_size(mut self, chunk_size: u32) -> Self {
        self.chunk_size = chunk_size;
        self
    }

    /// Use this key instead of a fresh random one. Chunks are sealed under the key
    /// derived from it and the Exposure_ID (spec §6.6), so one key may serve many
    /// exposures.
    pub fn with_key(mut self, key: Key) -> Self {
        self.key = Some(key);
        self
    }

    /// Seal chunks under the key itself, not under the key derived from it: the
    /// Manifest then has flags 0 for the upstream suite, as upstream v1 pullers
    /// expect (spec §6.6).
    ///
    /// Dangerous: a key that sealed two exposures reuses every nonce, which leaks
    /// the XOR of their plaintexts and, with AES-256-GCM, lets chunks be forged.
    /// [`ExposerBuilder::expose`] therefore refuses ([`StartError::RawKeyReused`])
    /// a key this process already used in this mode, unless for the same data
    /// chunked and sealed the same way (byte-identical ciphertext).
    pub fn dangerous_raw_key(mut self) -> Self {
        self.key_mode = KeyMode::Raw;
        self
    }

    /// Use this Exposure_ID instead of a fresh random one. With the same key, an
    /// Exposure_ID names one content: [`ExposerBuilder::expose`] refuses
    /// ([`StartError::ExposureIdReused`]) a key and Exposure_ID this process already
    /// sealed other data with, since the derived chunk key would be the same.
    pub fn with_exposure_id(mut self, id: ExposureId) -> Self {
        self.exposure_id = Some(id);
        self
    }

    /// Derive the Exposure_ID from the key and the content instead of drawing it at
    /// random (spec §6.1): an exposer restarted with the same file, key and settings
    /// serves the same exposure (same Exposure_ID, same root, same ciphertext), so
    /// pullers carry on and resume. Costs one more hashing pass over the data. Anyone
    /// holding the key can tell that two exposures carry the same content.
    pub fn with_stable_exposure_id(mut self) -> Self {
        self.stable_id = true;
        self
    }

    /// Do not refuse a chunk key this process already sealed other data with
    /// ([`StartError::RawKeyReused`], [`StartError::ExposureIdReused`]), and do not
    /// record this one. Dangerous: two exposures under one chunk key reuse every
    /// nonce. Only for harnesses that deliberately seal several contents under one
    /// key and Exposure_ID (benchmarks with fixed inputs, a test playing a key
    /// holder who forges an exposure), where nothing sealed is secret.
    pub fn dangerous_allow_key_reuse(mut self) -> Self {
        self.claim_key = false;
        self
    }

    /// Serving settings (amplification limit, queue, GSO batch, …).
    pub fn with_config(mut self, config: ExposerConfig) -> Self {
        self.config = config;
        self
    }

    /// Mint and check address-validation tokens with this secret instead of one
    /// drawn at random (spec §5.3): to rebuild a recorded exposer for replay
    /// (§16.2), or in a simulation. Keep it from pullers: whoever knows it can
    /// make the exposer send a spoofed address everything a validated puller gets.
    pub fn with_token_secret(mut self, secret: [u8; 32]) -> Self {
        self.token_secret = TokenSecret::Given(secret);
        self
    }

    /// Derive the token secret from the key and Exposure_ID, as redgiant did by
    /// default before (spec §5.3). Dangerous: every ticket carries both, so any
    /// ticket holder can mint tokens for any address and turn the exposer into
    /// an unbounded amplifier aimed at that address. Only for exposures whose
    /// tickets never leave a trusted group, where exposers rebuilt from the
    /// ticket must agree on tokens without sharing a secret.
    pub fn dangerous_token_secret_from_key(mut self) -> Self {
        self.token_secret = TokenSecret::DangerousFromKey;
        self
    }

    /// Validates the combination, seals `data` and prepares the exposure.
    pub fn expose(self, data: &[u8]) -> Result<Prepared, StartError> {
        if self.chunk_size == 0 || self.chunk_size > MAX_CHUNK_SIZE {
            return Err(StartError::ChunkSize(self.chunk_size));
        }
        let key = self.key.unwrap_or_else(rgtp_providers::cipher::random_key);
        let hash = self.hash.start()?;
        // Every leaf hashed once, on every core: first when the stable Exposure_ID
        // (and so the key) depends on the root, else while sealing.
        let early_leaves = (self.exposure_id.is_none() && self.stable_id)
            .then(|| crate::verify::output_leaves(&hash, data, self.chunk_size));
        let id = match (self.exposure_id, &early_leaves) {
            (Some(id), _) => id,
            (None, Some(leaves)) => {
                let suite = self.cipher.cipher_id().ok_or_else(|| {
                    StartError::Cipher(
                        "a custom cipher (a stable Exposure_ID needs a named suite)".into(),
                    )
                })?;
                let root = if data.is_empty() {
                    hash.leaf(&[])
                } else {
                    rgtp_proto::merkle::root_of(&hash, leaves)
                };
                rgtp_proto::crypto::stable_exposure_id(
                    &key,
                    suite,
                    self.chunk_size,
                    data.len() as u64,
                    &root,
                )
            }
            (None, None) => rgtp_providers::cipher::random_exposure_id(),
        };
        let chunk_key = self.key_mode.chunk_key(&key, &id);
        let cipher = self.cipher.start(&chunk_key)?;
        let fec = self.fec.start()?;
        Exposure::check(
            data.len() as u64,
            self.chunk_size,
            cipher.id(),
            &hash,
            &fec,
            self.proofs,
            self.key_mode,
        )?;
        let (mut store, mapped) =
            alloc_store(Exposure::store_len(data.len() as u64, self.chunk_size))?;
        let leaves = match early_leaves {
            Some(leaves) => {
                crate::verify::seal_parallel(
                    &cipher,
                    &id,
                    data,
                    self.chunk_size,
                    store.bytes_mut(),
                )?;
                leaves
            }
            None => {
                let mut leaves = vec![[0u8; 32]; data.len().div_ceil(self.chunk_size as usize)];
                crate::verify::seal_and_hash_parallel(
                    &cipher,
                    &id,
                    &hash,
                    data,
                    self.chunk_size,
                    store.bytes_mut(),
                    &mut leaves,
                )?;
                leaves
            }
        };
        let tree = crate::verify::tree_parallel(&hash, leaves);
        let exposure = Exposure::from_sealed(
            id,
            data.len() as u64,
            self.chunk_size,
            cipher.id(),
            self.key_mode,
            &hash,
            &fec,
            self.proofs,
            store,
            tree,
        )?;
        // Whatever the mode, the key that seals must seal nothing else: a raw key
        // reused, or a derived one from a key and Exposure_ID given twice. A derived
        // key from an Exposure_ID drawn here at random (128 bits) cannot recur, so
        // only those two cases are recorded.
        let chosen = self.key_mode == KeyMode::Raw || self.exposure_id.is_some();
        if self.claim_key && chosen {
            raw_keys::claim(&chunk_key, &exposure).map_err(|raw_keys::Reused| {
                match self.key_mode {
                    KeyMode::Raw => StartError::RawKeyReused,
                    KeyMode::Derived => StartError::ExposureIdReused,
                }
            })?;
        }
        let mut config = self.config;
        match self.token_secret {
            TokenSecret::Given(secret) => config.token_secret = secret,
            TokenSecret::DangerousFromKey => {
                config.token_secret =
                    rgtp_proto::token::TokenKey::dangerous_secret_from_key(key.as_bytes(), &id)
            }
            TokenSecret::Random if config.token_secret == [0; 32] => {
                config.token_secret = *rgtp_providers::cipher::random_key().as_bytes()
            }
            TokenSecret::Random => {}
        }
        let exposure = Arc::new(exposure);
        Ok(Prepared {
            mapped: mapped.then(|| Arc::clone(&exposure)),
            exposure,
            key,
            config,
        })
    }
}

/// Ciphertext store in an anonymous mapping: pages are committed as they are written.
struct AnonStore(memmap2::MmapMut);

impl ChunkStore for AnonStore {
    fn bytes(&self) -> &[u8] {
        &self.0
    }
    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

/// A store of `len` bytes: on the heap below 1 MiB, else in an anonymous mapping
/// of its own (true).
fn alloc_store(len: usize) -> Result<(Box<dyn ChunkStore>, bool), StartError> {
    if len < (1 << 20) {
        return Ok((Box::new(vec![0u8; len]), false));
    }
    let map = crate::sink::anon_map(len).map_err(|e| StartError::Alloc(len, e))?;
    Ok((Box::new(AnonStore(map)), true))
}

/// An exposure whose store the builder put in an anonymous mapping of its own:
/// written only while sealing, handed out shared ever after (an [`Exposure`] never
/// gives its store out mutably), and unmapped when the last owner drops it, so it
/// keeps the [`LentMemory`] contract.
struct LentStore(Arc<Exposure>);

impl LentMemory for LentStore {
    fn bytes(&self) -> &[u8] {
        self.0.store_bytes()
    }
}

/// A prepared exposure with its key: make tickets and exposers from it.
pub struct Prepared {
    /// The sealed dataset.
    pub exposure: Arc<Exposure>,
    /// Its key (never sent on the wire).
    pub key: Key,
    /// Serving settings.
    pub config: ExposerConfig,
    /// The exposure as sealed, when its store is a mapping of its own.
    mapped: Option<Arc<Exposure>>,
}

impl Prepared {
    /// The sealed store as memory a link may send from without copying it
    /// ([`Link::lend`](redgiant_base::link::Link::lend)): every batch of chunks
    /// then leaves from the store's own pages. `None` for an exposure under 1 MiB,
    /// whose store is on the heap and is copied.
    pub fn lent_store(&self) -> Option<Arc<dyn LentMemory>> {
        let exposure = Arc::clone(self.mapped.as_ref()?);
        Some(Arc::new(LentStore(exposure)))
    }

    /// A job that moves the sealed store onto transparent huge pages
    /// ([`crate::huge`]), so that each send from it finds and pins its bytes in
    /// one huge page instead of 16 or 17 small ones; `rgtp expose` runs it on a
    /// thread that runs only when a CPU is idle.
    /// `None` where the store is on the heap (an exposure under 1 MiB).
    pub fn huge_pages(&self) -> Option<crate::huge::HugePages> {
        let exposure = Arc::clone(self.mapped.as_ref()?);
        Some(crate::huge::HugePages::new(exposure))
    }

    /// The ticket for pulling from `addr`, with the suite pinned.
    pub fn ticket(&self, addr: SocketAddr) -> Ticket {
        let suite = self.exposure.suite();
        Ticket {
            host: host_of(&addr),
            port: addr.port(),
            mac: None,
            exposure_id: *self.exposure.id(),
            key: self.key.clone(),
            cipher: Some(suite.cipher),
            hash: Some(suite.hash),
        }
    }

    /// The ticket for pulling over raw Ethernet from the station `mac`.
    pub fn ticket_mac(&self, mac: [u8; 6]) -> Ticket {
        Ticket {
            host: String::new(),
            port: 0,
            mac: Some(mac),
            ..self.ticket(SocketAddr::from(([0, 0, 0, 0], 0)))
        }
    }

    /// The ticket for pulling from `peer` (a UDP address or a MAC address;
    /// in-memory peers get the address recordings show for them).
    pub fn ticket_for(&self, peer: rgtp_proto::Peer) -> Ticket {
        match peer {
            rgtp_proto::Peer::Ip(a) => self.ticket(a),
            rgtp_proto::Peer::Ethernet(m) => self.ticket_mac(m),
            rgtp_proto::Peer::Mem(n) => self.ticket(rgtp_capture::frame::mem_addr(n)),
        }
    }

    /// The secret its exposers mint address-validation tokens with (spec §5.3).
    /// Never give it to pullers; keep it beside a recording to replay the
    /// exposer's answers (§16.2).
    pub fn token_secret(&self) -> &[u8; 32] {
        &self.config.token_secret
    }

    /// A fresh serving state machine (many may serve one exposure).
    pub fn exposer(&self) -> Exposer {
        Exposer::new(Arc::clone(&self.exposure), self.config.clone())
    }
}

#[cfg(test)]
mod tests {
    use rgtp_proto::FecScheme;

    use super::*;

    /// With every provider feature on (the default), every identifier a
    /// Manifest, ticket or command line can name resolves, in the builder
    /// and in the puller's suite factory.
    #[test]
    #[cfg(all(
        feature = "aead-aes-gcm",
        feature = "aead-chacha20poly1305",
        feature = "hash-sha256",
        feature = "hash-blake2b",
        feature = "hash-blake3",
        feature = "fec-rs",
        feature = "fec-raptorq"
    ))]
    fn every_provider_id_resolves() {
        use rgtp_proto::SuiteFactory;

        use crate::suite::DynSuite;

        let key = Key::from_bytes([7; 32]);
        for cipher in [CipherId::Aes256Gcm, CipherId::ChaCha20Poly1305] {
            assert!(DynSuite.cipher(cipher, &key).is_some(), "{cipher:?}");
            for hash in [HashId::Sha256, HashId::Blake2b256, HashId::Blake3] {
                assert!(DynSuite.hash(hash).is_some(), "{hash:?}");
                for fec in ["none", "rs:10,8", "raptorq:0.25"] {
                    let fec: FecSpec = fec.parse().unwrap();
                    assert!(DynSuite.fec(fec.params().unwrap()).is_some(), "{fec}");
                    let prepared = ExposerBuilder::new()
                        .with_cipher(cipher)
                        .with_hash(hash)
                        .with_fec(fec)
                        .with_key(key.clone())
                        .expose(&[0x5a; 5000])
                        .unwrap_or_else(|e| panic!("{cipher:?}/{hash:?}/{fec}: {e}"));
                    let suite = prepared.exposure.suite();
                    assert_eq!((suite.cipher, suite.hash), (cipher, hash));
                }
            }
        }
    }

    /// A provider left out of the build is a `StartError` that names the
    /// feature to enable (checked against a given feature set, since the
    /// default build holds every provider).
    #[test]
    fn missing_provider_names_its_feature() {
        let only = ["aead-aes-gcm", "hash-sha256"];
        let err = |p: Provider| StartError::from(p.check_in(&only).unwrap_err()).to_string();
        assert_eq!(
            err(Provider::Cipher(CipherId::ChaCha20Poly1305)),
            "cipher chacha20-poly1305 is not in this build (enable feature `aead-chacha20poly1305`)"
        );
        assert_eq!(
            err(Provider::Hash(HashId::Blake2b256)),
            "Merkle hash blake2b-256 is not in this build (enable feature `hash-blake2b`)"
        );
        assert_eq!(
            err(Provider::Fec(FecScheme::ReedSolomon)),
            "FEC reed-solomon is not in this build (enable feature `fec-rs`)"
        );
    }
}
