-- rgtp.lua: Wireshark dissector for RGTP v1, the Red Giant Transport Protocol.
--
-- Wire format: spec/rgtp-v1.md §2 (packet formats), §3.4 (parity entries),
-- §3.6 (proof runs), §4.1 (suite flags), §5.3 (tokens). The reference parser
-- is crates/rgtp-wire; field names follow its reprs, and malformed datagrams
-- are classified by the checks of §2.13 in the same order, with the same
-- class names.
--
-- Registered on:
--   * EtherType 0x88B5 (raw Ethernet, 802.1Q-tagged frames included);
--   * UDP port 9000 (preference "UDP port"; also offered in Decode As);
--   * a heuristic on UDP ("rgtp_udp") for any other port.
--
-- Load it with `tshark -X lua_script:rgtp.lua` or copy it into the personal
-- plugins folder; see README.md next to this file.

local rgtp = Proto("rgtp", "Red Giant Transport Protocol")

local VERSION = 1
local HEADER_LEN = 4
local HASH_LEN = 32
local TOKEN_LEN = 16
local RATE_CAP_LEN = 8
local TAG_LEN = 16
local MAX_PROOF_DEPTH = 32
-- Shortest Ethernet payload: a frame of 60 bytes (without FCS) minus the
-- 14-byte header. Over raw Ethernet, bytes after Length are not part of the
-- packet (as in rgtp-capture's frame decoder): padding in a frame this
-- short, an unexpected trailer in a longer one.
local ETH_MIN_PAYLOAD = 46

local PULL_REQUEST, MANIFEST, CHUNK_DATA, CHUNK_DATA_WITH_PROOF,
      FEC_PARITY, NAK, RATE_REPORT, KEEPALIVE = 1, 2, 3, 4, 5, 6, 7, 8

local type_names = {
    [PULL_REQUEST] = "Pull_Request",
    [MANIFEST] = "Manifest",
    [CHUNK_DATA] = "Chunk_Data",
    [CHUNK_DATA_WITH_PROOF] = "Chunk_Data_With_Proof",
    [FEC_PARITY] = "FEC_Parity",
    [NAK] = "NAK",
    [RATE_REPORT] = "Rate_Report",
    [KEEPALIVE] = "Keepalive",
}

-- Length of each type's fixed part, header included (§2.13 step 5).
local fixed_len = {
    [PULL_REQUEST] = 36, [MANIFEST] = 72, [CHUNK_DATA] = 24,
    [CHUNK_DATA_WITH_PROOF] = 25, [FEC_PARITY] = 28, [NAK] = 24,
    [RATE_REPORT] = 44, [KEEPALIVE] = 32,
}

-- Payload limits (§2.12).
local MAX_PAYLOAD_UDP = 1450
local MAX_PAYLOAD_ETHERNET = 1430
local MAX_PAYLOAD_REDGIANT = 65507

---------------------------------------------------------------------------
-- Fields
---------------------------------------------------------------------------

local F = {}
local function field(key, pf) F[key] = pf end

-- Common header and shared fields.
field("version", ProtoField.uint8("rgtp.version", "Version", base.DEC, nil, nil,
    "Protocol version; MUST be 1"))
field("type", ProtoField.uint8("rgtp.type", "Type", base.HEX, type_names, nil,
    "Packet type (§2.2)"))
field("length", ProtoField.uint16("rgtp.length", "Length", base.DEC, nil, nil,
    "Size of the whole packet, header included; MUST equal the datagram's size"))
field("exposure_id", ProtoField.bytes("rgtp.exposure_id", "Exposure_ID", base.NONE,
    "16-byte exposure identifier, carried by every packet type"))
field("token", ProtoField.bytes("rgtp.token", "Token", base.NONE,
    "Address-validation token (extension, §5.3); opaque to the puller"))
field("malformed", ProtoField.string("rgtp.malformed", "Malformed",  base.ASCII,
    "Parse error class of §2.13, as in spec/vectors/packets.txt"))
field("padding", ProtoField.bytes("rgtp.padding", "Ethernet padding", base.NONE,
    "Bytes after Length in a raw Ethernet frame (not part of the packet)"))
field("extra", ProtoField.bytes("rgtp.extra", "Unexpected bytes", base.NONE,
    "Bytes beyond the packet's structure (malformed packet)"))

-- Pull_Request (0x01), §2.3.
field("pull_window_size", ProtoField.uint32("rgtp.pull.window_size", "Window_Size", base.DEC, nil, nil,
    "Puller's current window, in chunks"))
field("pull_loss_rate_q16", ProtoField.uint32("rgtp.pull.loss_rate_q16", "Loss_Rate_Q16", base.DEC, nil, nil,
    "Puller's loss estimate, Q16 (§8.5)"))
field("pull_flags", ProtoField.uint32("rgtp.pull.flags", "Flags", base.HEX, nil, nil, "PullFlags"))
field("pull_flags_proofs", ProtoField.bool("rgtp.pull.flags.proofs", "PROOFS", 32, nil, 0x00000001,
    "The puller would like Merkle proofs (advisory)"))
field("pull_flags_fec", ProtoField.bool("rgtp.pull.flags.fec", "FEC", 32, nil, 0x00000002,
    "The puller will use FEC parity (advisory)"))
field("pull_flags_addr_validation", ProtoField.bool("rgtp.pull.flags.addr_validation", "ADDR_VALIDATION", 32, nil, 0x00000004,
    "Extension: the puller understands tokens (§5.2)"))
field("pull_flags_rate_cap", ProtoField.bool("rgtp.pull.flags.rate_cap", "RATE_CAP", 32, nil, 0x00000008,
    "Extension: the puller honours an exposer's rate cap (§8.3.3)"))
field("pull_flags_proof_runs", ProtoField.bool("rgtp.pull.flags.proof_runs", "PROOF_RUNS", 32, nil, 0x00000010,
    "Extension: the puller judges chunks a run of 64 at a time, proofs on run heads only (§3.6)"))
field("pull_flags_reserved", ProtoField.uint32("rgtp.pull.flags.reserved", "Reserved", base.HEX, nil, 0xffffffe0,
    "Reserved bits: sent as 0, ignored (and kept) on receipt"))
field("pull_version_min", ProtoField.uint16("rgtp.pull.version_min", "Version_Min", base.DEC))
field("pull_version_max", ProtoField.uint16("rgtp.pull.version_max", "Version_Max", base.DEC))

-- Manifest (0x02), §2.4, §4.1.
field("man_total_size", ProtoField.uint64("rgtp.manifest.total_size", "Total_Size", base.DEC, nil, nil,
    "Plaintext size of the whole exposure, bytes"))
field("man_chunk_count", ProtoField.uint32("rgtp.manifest.chunk_count", "Chunk_Count", base.DEC))
field("man_chunk_size", ProtoField.uint32("rgtp.manifest.chunk_size", "Chunk_Size", base.DEC, nil, nil,
    "Plaintext bytes per chunk; only the last chunk may be shorter"))
field("man_merkle_root", ProtoField.bytes("rgtp.manifest.merkle_root", "Merkle_Root", base.NONE))
field("man_fec_n", ProtoField.uint8("rgtp.manifest.fec_n", "FEC_N", base.DEC, nil, nil,
    "Shards per FEC block; 0 without FEC"))
field("man_fec_k", ProtoField.uint8("rgtp.manifest.fec_k", "FEC_K", base.DEC, nil, nil,
    "Data shards per FEC block; 0 without FEC"))
field("man_flags", ProtoField.uint16("rgtp.manifest.flags", "Flags", base.HEX, nil, nil, "ManifestFlags"))
field("man_flags_aes", ProtoField.bool("rgtp.manifest.flags.aes_256_gcm", "AES_256_GCM", 16,
    {"AES-256-GCM", "ChaCha20-Poly1305"}, 0x0001))
field("man_flags_sha256", ProtoField.bool("rgtp.manifest.flags.hash_sha256", "HASH_SHA256", 16, nil, 0x0002))
field("man_flags_blake3", ProtoField.bool("rgtp.manifest.flags.hash_blake3", "HASH_BLAKE3", 16, nil, 0x0004))
field("man_flags_raptorq", ProtoField.bool("rgtp.manifest.flags.fec_raptorq", "FEC_RAPTORQ", 16,
    {"RaptorQ", "Reed-Solomon"}, 0x0008))
field("man_flags_proofs", ProtoField.bool("rgtp.manifest.flags.proofs", "PROOFS", 16, nil, 0x0010,
    "Every chunk is sent as Chunk_Data_With_Proof"))
field("man_flags_token", ProtoField.bool("rgtp.manifest.flags.token", "TOKEN", 16, nil, 0x0020,
    "A 16-byte token follows at offset 72"))
field("man_flags_derived_key", ProtoField.bool("rgtp.manifest.flags.derived_key", "DERIVED_KEY", 16, nil, 0x0040,
    "Chunks are sealed under HKDF(ticket key, Exposure_ID) (§6.6)"))
field("man_flags_rate_cap", ProtoField.bool("rgtp.manifest.flags.rate_cap", "RATE_CAP", 16, nil, 0x0080,
    "Extension: an 8-byte rate cap follows the fixed part and the token (§8.3.3)"))
field("man_rate_cap", ProtoField.uint64("rgtp.manifest.rate_cap", "Rate_Cap", base.DEC, nil, nil,
    "Extension (§8.3.3): the most bytes per second the exposer serves this puller"))
field("man_flags_proof_runs", ProtoField.bool("rgtp.manifest.flags.proof_runs", "PROOF_RUNS", 16, nil, 0x0100,
    "Extension: the exposer honours NakFlags PROOF_RUNS (§3.6)"))
field("man_flags_undefined", ProtoField.uint16("rgtp.manifest.flags.undefined", "Undefined", base.HEX, nil, 0xfe00,
    "Bits 9-15: MUST be 0 (BadFlags otherwise)"))
field("man_aead", ProtoField.string("rgtp.manifest.aead", "AEAD", base.ASCII, "Suite: AEAD (§4.1)"))
field("man_hash", ProtoField.string("rgtp.manifest.hash", "Merkle hash", base.ASCII, "Suite: Merkle hash (§4.1)"))
field("man_fec", ProtoField.string("rgtp.manifest.fec", "FEC", base.ASCII, "Suite: FEC code (§4.1)"))

-- Chunk_Data (0x03) and Chunk_Data_With_Proof (0x04), §2.5, §2.6.
field("chunk_index", ProtoField.uint32("rgtp.chunk.index", "Chunk_Index", base.DEC))
field("chunk_payload", ProtoField.bytes("rgtp.chunk.payload", "Payload", base.NONE,
    "Sealed chunk: ciphertext || 16-byte tag"))
field("chunk_payload_len", ProtoField.uint32("rgtp.chunk.payload_len", "Payload length", base.DEC))
field("chunk_ciphertext", ProtoField.bytes("rgtp.chunk.ciphertext", "Ciphertext", base.NONE))
field("chunk_tag", ProtoField.bytes("rgtp.chunk.tag", "Tag", base.NONE, "16-byte AEAD tag"))
field("proof", ProtoField.bytes("rgtp.proof", "Proof", base.NONE, "Sibling hashes, leaf level first"))
field("proof_depth", ProtoField.uint8("rgtp.proof.depth", "Proof_Depth", base.DEC, nil, nil,
    "Number of sibling hashes, at most 32"))
field("proof_node", ProtoField.bytes("rgtp.proof.node", "Sibling", base.NONE))

-- FEC_Parity (0x05), §2.7.
field("fec_block_index", ProtoField.uint32("rgtp.fec.block_index", "Block_Index", base.DEC))
field("fec_parity_index", ProtoField.uint8("rgtp.fec.parity_index", "Parity_Index", base.DEC))
field("fec_fec_n", ProtoField.uint8("rgtp.fec.fec_n", "FEC_N", base.DEC))
field("fec_fec_k", ProtoField.uint8("rgtp.fec.fec_k", "FEC_K", base.DEC))
field("fec_reserved", ProtoField.uint8("rgtp.fec.reserved", "Reserved", base.HEX))
field("fec_payload", ProtoField.bytes("rgtp.fec.payload", "Payload", base.NONE,
    "Parity shard of the block, Chunk_Size + 16 bytes"))
field("fec_payload_len", ProtoField.uint32("rgtp.fec.payload_len", "Payload length", base.DEC))

-- NAK (0x06), §2.8, §3.4.
field("nak_count", ProtoField.uint16("rgtp.nak.count", "NAK_Count", base.DEC))
field("nak_flags", ProtoField.uint16("rgtp.nak.flags", "Flags", base.HEX, nil, nil,
    "NakFlags (upstream: Reserved)"))
field("nak_flags_token", ProtoField.bool("rgtp.nak.flags.token", "TOKEN", 16, nil, 0x0001,
    "A 16-byte token follows the entry list"))
field("nak_flags_proofs", ProtoField.bool("rgtp.nak.flags.proofs", "PROOFS", 16, nil, 0x0002,
    "Answer this NAK's chunk entries with proofs"))
field("nak_flags_proof_runs", ProtoField.bool("rgtp.nak.flags.proof_runs", "PROOF_RUNS", 16, nil, 0x0004,
    "Extension: proofs only on chunk entries at multiples of 64 (§3.6)"))
field("nak_flags_reserved", ProtoField.uint16("rgtp.nak.flags.reserved", "Reserved", base.HEX, nil, 0xfff8,
    "Reserved bits: sent as 0, ignored (and kept) on receipt"))
field("nak_entry", ProtoField.uint32("rgtp.nak.entry", "Entry", base.HEX, nil, nil,
    "Raw 32-bit entry, in request order"))
field("nak_entry_parity", ProtoField.bool("rgtp.nak.entry.parity", "Parity entry", 32, nil, 0x80000000,
    "Bit 31: names a parity shard, 0x80000000 | block << 8 | p (§3.4); without FEC a chunk index"))
field("nak_entry_chunk", ProtoField.uint32("rgtp.nak.entry.chunk", "Chunk index", base.DEC))
field("nak_entry_block", ProtoField.uint32("rgtp.nak.entry.block", "Block", base.DEC, nil, 0x7fffff00))
field("nak_entry_parity_index", ProtoField.uint32("rgtp.nak.entry.parity_index", "Parity index", base.DEC, nil, 0x000000ff))

-- Rate_Report (0x07), §2.9.
field("rate_rtt_us", ProtoField.uint32("rgtp.rate.rtt_us", "RTT_Us", base.DEC, nil, nil,
    "Smoothed RTT, microseconds; 0 if none yet"))
field("rate_loss_rate_q16", ProtoField.uint32("rgtp.rate.loss_rate_q16", "Loss_Rate_Q16", base.DEC))
field("rate_window_size", ProtoField.uint32("rgtp.rate.window_size", "Window_Size", base.DEC))
field("rate_reserved", ProtoField.uint32("rgtp.rate.reserved", "Reserved", base.HEX))
field("rate_timestamp_us", ProtoField.uint64("rgtp.rate.timestamp_us", "Timestamp_Us", base.DEC, nil, nil,
    "Sender clock, microseconds since the Unix epoch"))
field("rate_time", ProtoField.absolute_time("rgtp.rate.time", "Timestamp", base.UTC))

-- Keepalive (0x08), §2.10.
field("ka_timestamp_us", ProtoField.uint64("rgtp.keepalive.timestamp_us", "Timestamp_Us", base.DEC, nil, nil,
    "Sender clock, microseconds since the Unix epoch"))
field("ka_reserved", ProtoField.uint32("rgtp.keepalive.reserved", "Reserved", base.HEX))
field("ka_time", ProtoField.absolute_time("rgtp.keepalive.time", "Timestamp", base.UTC))

do
    local list = {}
    for _, pf in pairs(F) do list[#list + 1] = pf end
    rgtp.fields = list
end

---------------------------------------------------------------------------
-- Expert info: one entry per parse error class of §2.13, plus notes.
---------------------------------------------------------------------------

local E = {}
local function malformed_expert(class, key, text)
    E[class] = ProtoExpert.new("rgtp.malformed." .. key, text,
        expert.group.MALFORMED, expert.severity.ERROR)
end
malformed_expert("Truncated", "truncated", "Truncated: shorter than the header or the type's fixed part")
malformed_expert("UnknownVersion", "unknown_version", "UnknownVersion: version is not 1")
malformed_expert("UnknownType", "unknown_type", "UnknownType: type not in 0x01..0x08")
malformed_expert("LengthMismatch", "length_mismatch", "LengthMismatch: Length differs from the datagram's size")
malformed_expert("BadLength", "bad_length", "BadLength: wrong size for the packet type")
malformed_expert("BadFlags", "bad_flags", "BadFlags: undefined Manifest flag, or two hashes")
malformed_expert("BadProofDepth", "bad_proof_depth", "BadProofDepth: Proof_Depth > 32 or beyond the packet")
malformed_expert("BadNakCount", "bad_nak_count", "BadNakCount: NAK_Count disagrees with Length")
malformed_expert("PayloadTooLarge", "payload_too_large", "PayloadTooLarge: payload over the payload limit")
local e_reserved = ProtoExpert.new("rgtp.reserved_nonzero", "Reserved bits or field not zero (ignored on receipt)",
    expert.group.PROTOCOL, expert.severity.NOTE)
local e_semantic = ProtoExpert.new("rgtp.semantic", "Well-formed, but fails a semantic check (§8.2)",
    expert.group.PROTOCOL, expert.severity.WARN)
local e_padding = ProtoExpert.new("rgtp.padding.present", "Ethernet padding after the packet",
    expert.group.SEQUENCE, expert.severity.CHAT)
local e_trailer = ProtoExpert.new("rgtp.padding.trailer",
    "Bytes after Length in a frame longer than the Ethernet minimum (ignored)",
    expert.group.PROTOCOL, expert.severity.NOTE)

do
    local list = { e_reserved, e_semantic, e_padding, e_trailer }
    for _, e in pairs(E) do list[#list + 1] = e end
    rgtp.experts = list
end

---------------------------------------------------------------------------
-- Preferences
---------------------------------------------------------------------------

local LIMIT_UPSTREAM, LIMIT_REDGIANT, LIMIT_CUSTOM = 1, 2, 3
rgtp.prefs.udp_port = Pref.uint("UDP port", 9000,
    "UDP port decoded as RGTP (0: none; other ports by heuristic or Decode As)")
rgtp.prefs.payload_limit = Pref.enum("Payload limit", LIMIT_UPSTREAM,
    "Largest payload of Chunk_Data, Chunk_Data_With_Proof and FEC_Parity before "
    .. "the packet is PayloadTooLarge (§2.12)",
    {
        { 1, "upstream", LIMIT_UPSTREAM },
        { 2, "redgiant", LIMIT_REDGIANT },
        { 3, "custom", LIMIT_CUSTOM },
    }, false)
rgtp.prefs.max_payload = Pref.uint("Custom payload limit", MAX_PAYLOAD_UDP,
    "Payload limit in bytes when \"Payload limit\" is custom")
rgtp.prefs.info_one_line = Pref.bool("Short Info column", false,
    "Only type and Exposure_ID in the Info column")

local function max_payload(over_udp)
    local choice = rgtp.prefs.payload_limit
    if choice == LIMIT_REDGIANT then
        return MAX_PAYLOAD_REDGIANT
    elseif choice == LIMIT_CUSTOM then
        return rgtp.prefs.max_payload
    end
    return over_udp and MAX_PAYLOAD_UDP or MAX_PAYLOAD_ETHERNET
end

---------------------------------------------------------------------------
-- Helpers
---------------------------------------------------------------------------

local function hex_prefix(tvb, offset, n)
    local parts = {}
    for i = 0, n - 1 do
        parts[#parts + 1] = string.format("%02x", tvb(offset + i, 1):uint())
    end
    return table.concat(parts)
end

local function q16_percent(v)
    return string.format("%.3f%%", v * 100 / 65536)
end

local function flag_names(value, names)
    local set = {}
    for _, pair in ipairs(names) do
        if bit.band(value, pair[1]) ~= 0 then set[#set + 1] = pair[2] end
    end
    local known = 0
    for _, pair in ipairs(names) do known = bit.bor(known, pair[1]) end
    if bit.band(value, bit.bnot(known)) ~= 0 then set[#set + 1] = "reserved" end
    if #set == 0 then return "none" end
    return table.concat(set, "|")
end

local pull_flag_names = { {0x1, "PROOFS"}, {0x2, "FEC"}, {0x4, "ADDR_VALIDATION"}, {0x8, "RATE_CAP"},
    {0x10, "PROOF_RUNS"} }
local manifest_flag_names = { {0x01, "AES_256_GCM"}, {0x02, "HASH_SHA256"}, {0x04, "HASH_BLAKE3"},
    {0x08, "FEC_RAPTORQ"}, {0x10, "PROOFS"}, {0x20, "TOKEN"}, {0x40, "DERIVED_KEY"}, {0x80, "RATE_CAP"},
    {0x100, "PROOF_RUNS"} }
local nak_flag_names = { {0x1, "TOKEN"}, {0x2, "PROOFS"}, {0x4, "PROOF_RUNS"} }

-- Microseconds since the epoch (UInt64) to an NSTime.
local function us_to_nstime(us)
    local secs = (us / 1000000):tonumber()
    local nsecs = (us % 1000000):tonumber() * 1000
    return NSTime.new(secs, nsecs)
end

---------------------------------------------------------------------------
-- Classification: the checks of §2.13, in order. Returns the class and the
-- error string as spec/vectors/packets.txt writes it, or nil when the
-- packet parses.
---------------------------------------------------------------------------

local function classify(tvb, n, captured, limit)
    -- n: datagram size (padding already removed); captured: bytes present.
    -- A check whose bytes were cut off by the snapshot length is skipped.
    local function cut(offset, len) return offset + len > captured end
    if n < HEADER_LEN then return "Truncated", "Truncated" end
    if cut(0, HEADER_LEN) then return nil end
    local version = tvb(0, 1):uint()
    if version ~= VERSION then
        return "UnknownVersion", string.format("UnknownVersion(%d)", version)
    end
    local ty = tvb(1, 1):uint()
    if not type_names[ty] then
        return "UnknownType", string.format("UnknownType(%d)", ty)
    end
    local declared = tvb(2, 2):uint()
    if declared ~= n then
        return "LengthMismatch", string.format("LengthMismatch(%d, %d)", declared, n)
    end
    if n < fixed_len[ty] then return "Truncated", "Truncated" end
    local payload = 0
    if ty == PULL_REQUEST or ty == RATE_REPORT or ty == KEEPALIVE then
        if n > fixed_len[ty] then return "BadLength", "BadLength" end
    elseif ty == MANIFEST then
        if cut(70, 2) then return nil end
        local flags = tvb(70, 2):uint()
        local want = 72 + (bit.band(flags, 0x20) ~= 0 and TOKEN_LEN or 0)
            + (bit.band(flags, 0x80) ~= 0 and RATE_CAP_LEN or 0)
        if n ~= want then return "BadLength", "BadLength" end
        if bit.band(flags, 0xfe00) ~= 0 or bit.band(flags, 0x6) == 0x6 then
            return "BadFlags", "BadFlags"
        end
    elseif ty == CHUNK_DATA then
        payload = n - 24
    elseif ty == CHUNK_DATA_WITH_PROOF then
        if cut(24, 1) then return nil end
        local depth = tvb(24, 1):uint()
        if depth > MAX_PROOF_DEPTH or 25 + HASH_LEN * depth > n then
            return "BadProofDepth", "BadProofDepth"
        end
        payload = n - 25 - HASH_LEN * depth
    elseif ty == FEC_PARITY then
        payload = n - 28
    elseif ty == NAK then
        if cut(20, 4) then return nil end
        local count = tvb(20, 2):uint()
        local flags = tvb(22, 2):uint()
        local want = 24 + 4 * count + (bit.band(flags, 1) ~= 0 and TOKEN_LEN or 0)
        if n ~= want then return "BadNakCount", "BadNakCount" end
    end
    if payload > limit then return "PayloadTooLarge", "PayloadTooLarge" end
    return nil
end

---------------------------------------------------------------------------
-- Per-type bodies. `n` is the packet's size as dissected (at most the bytes
-- present); every helper only adds fields that fit.
---------------------------------------------------------------------------

local function add_if(tree, pf, tvb, n, offset, len)
    if offset + len <= n then
        return tree:add(pf, tvb(offset, len))
    end
    return nil
end

local function note_reserved(item, tvb, n, offset, len)
    if item and offset + len <= n then
        local zero = true
        for i = 0, len - 1 do
            if tvb(offset + i, 1):uint() ~= 0 then zero = false end
        end
        if not zero then item:add_proto_expert_info(e_reserved) end
    end
end

-- The end of the last of `ends` (field ends, ascending) that fits in n.
local function used_of(n, ends)
    local used = math.min(n, 20)
    for _, e in ipairs(ends) do if e <= n then used = e end end
    return used
end

local function extra_bytes(tree, tvb, n, used)
    if used < n then tree:add(F.extra, tvb(used, n - used)) end
end

local function add_token(tree, tvb, n, offset)
    if offset + TOKEN_LEN <= n then
        tree:add(F.token, tvb(offset, TOKEN_LEN))
        return offset + TOKEN_LEN
    end
    return offset
end

local function add_sealed_payload(tree, tvb, n, offset)
    local len = n - offset
    if len < 0 then return "" end
    local item
    if len > 0 then
        item = tree:add(F.chunk_payload, tvb(offset, len))
        if len >= TAG_LEN then
            item:add(F.chunk_ciphertext, tvb(offset, len - TAG_LEN))
            item:add(F.chunk_tag, tvb(offset + len - TAG_LEN, TAG_LEN))
        end
        item:append_text(string.format(" (%d bytes)", len))
    else
        item = tree:add(F.chunk_payload, tvb(offset, 0))
        item:set_text("Payload: (empty)")
    end
    tree:add(F.chunk_payload_len, len):set_generated()
    return string.format(" len=%d", len)
end

local dissect_body = {}

dissect_body[PULL_REQUEST] = function(tvb, pinfo, tree, n)
    local info = ""
    local item = add_if(tree, F.pull_window_size, tvb, n, 20, 4)
    if item then info = info .. string.format(" win=%d", tvb(20, 4):uint()) end
    item = add_if(tree, F.pull_loss_rate_q16, tvb, n, 24, 4)
    if item then item:append_text(" (" .. q16_percent(tvb(24, 4):uint()) .. ")") end
    if 32 <= n then
        local flags = tvb(28, 4):uint()
        local ft = tree:add(F.pull_flags, tvb(28, 4))
        ft:append_text(" (" .. flag_names(flags, pull_flag_names) .. ")")
        ft:add(F.pull_flags_proofs, tvb(28, 4))
        ft:add(F.pull_flags_fec, tvb(28, 4))
        ft:add(F.pull_flags_addr_validation, tvb(28, 4))
        ft:add(F.pull_flags_rate_cap, tvb(28, 4))
        ft:add(F.pull_flags_proof_runs, tvb(28, 4))
        local r = ft:add(F.pull_flags_reserved, tvb(28, 4))
        if bit.band(flags, 0xffffffe0) ~= 0 then r:add_proto_expert_info(e_reserved) end
        info = info .. " flags=" .. flag_names(flags, pull_flag_names)
    end
    add_if(tree, F.pull_version_min, tvb, n, 32, 2)
    add_if(tree, F.pull_version_max, tvb, n, 34, 2)
    if 36 <= n then
        info = info .. string.format(" v%d-%d", tvb(32, 2):uint(), tvb(34, 2):uint())
    end
    extra_bytes(tree, tvb, n, used_of(n, { 24, 28, 32, 34, 36 }))
    return info
end

dissect_body[MANIFEST] = function(tvb, pinfo, tree, n)
    local info = ""
    add_if(tree, F.man_total_size, tvb, n, 20, 8)
    add_if(tree, F.man_chunk_count, tvb, n, 28, 4)
    add_if(tree, F.man_chunk_size, tvb, n, 32, 4)
    add_if(tree, F.man_merkle_root, tvb, n, 36, 32)
    add_if(tree, F.man_fec_n, tvb, n, 68, 1)
    add_if(tree, F.man_fec_k, tvb, n, 69, 1)
    if n < 72 then
        extra_bytes(tree, tvb, n, used_of(n, { 28, 32, 36, 68, 69, 70 }))
        return info
    end
    local total = tvb(20, 8):uint64()
    local count = tvb(28, 4):uint()
    local size = tvb(32, 4):uint()
    local fec_n, fec_k = tvb(68, 1):uint(), tvb(69, 1):uint()
    local flags = tvb(70, 2):uint()
    local ft = tree:add(F.man_flags, tvb(70, 2))
    ft:append_text(" (" .. flag_names(flags, manifest_flag_names) .. ")")
    ft:add(F.man_flags_aes, tvb(70, 2))
    ft:add(F.man_flags_sha256, tvb(70, 2))
    ft:add(F.man_flags_blake3, tvb(70, 2))
    ft:add(F.man_flags_raptorq, tvb(70, 2))
    ft:add(F.man_flags_proofs, tvb(70, 2))
    ft:add(F.man_flags_token, tvb(70, 2))
    ft:add(F.man_flags_derived_key, tvb(70, 2))
    ft:add(F.man_flags_rate_cap, tvb(70, 2))
    ft:add(F.man_flags_proof_runs, tvb(70, 2))
    ft:add(F.man_flags_undefined, tvb(70, 2))

    -- The suite (§4.1), as generated fields.
    local aead = bit.band(flags, 0x1) ~= 0 and "AES-256-GCM" or "ChaCha20-Poly1305"
    local hashes = { [0] = "BLAKE2b-256", [2] = "SHA-256", [4] = "BLAKE3", [6] = "invalid (SHA-256 and BLAKE3)" }
    local hash = hashes[bit.band(flags, 0x6)]
    local fec
    if fec_n == 0 and fec_k == 0 then
        fec = bit.band(flags, 0x8) ~= 0 and "invalid (RaptorQ without N, K)" or "none"
    else
        fec = string.format("%s(%d,%d)", bit.band(flags, 0x8) ~= 0 and "RaptorQ" or "Reed-Solomon", fec_n, fec_k)
    end
    tree:add(F.man_aead, aead):set_generated()
    tree:add(F.man_hash, hash):set_generated()
    tree:add(F.man_fec, fec):set_generated()

    local used = 72
    if bit.band(flags, 0x20) ~= 0 then used = add_token(tree, tvb, n, 72) end
    local cap
    if bit.band(flags, 0x80) ~= 0 and used + RATE_CAP_LEN <= n then
        tree:add(F.man_rate_cap, tvb(used, RATE_CAP_LEN))
        cap = tvb(used, RATE_CAP_LEN):uint64()
        used = used + RATE_CAP_LEN
        if cap == UInt64(0) then
            tree:add_proto_expert_info(e_semantic, "Rate_Cap 0: a cap must be at least 1 byte per second")
        end
    end
    extra_bytes(tree, tvb, n, used)

    -- Semantic checks of §8.2 (not parse errors).
    local function semantic(text) tree:add_proto_expert_info(e_semantic, text) end
    if not ((fec_n == 0 and fec_k == 0 and bit.band(flags, 0x8) == 0)
            or (fec_k >= 1 and fec_k < fec_n)) then
        semantic(string.format("FEC_N=%d, FEC_K=%d: need N = K = 0 (without RaptorQ) or 1 <= K < N", fec_n, fec_k))
    end
    if total == UInt64(0) then
        if count ~= 0 then semantic("Total_Size 0 with Chunk_Count " .. count) end
    elseif size == 0 then
        semantic("Chunk_Size 0 with Total_Size " .. tostring(total))
    else
        local want = (total + UInt64(size - 1)) / UInt64(size)
        if total > UInt64(0xffffffff) * UInt64(size) or want ~= UInt64(count) then
            semantic(string.format("Chunk_Count %d, but ceil(Total_Size / Chunk_Size) = %s", count, tostring(want)))
        end
    end

    info = string.format(" chunks=%d total=%s chunk_size=%d %s/%s fec=%s", count, tostring(total), size,
        aead, hash, fec)
    if bit.band(flags, 0x10) ~= 0 then info = info .. " proofs" end
    if bit.band(flags, 0x20) ~= 0 then info = info .. " token" end
    if bit.band(flags, 0x100) ~= 0 then info = info .. " proof_runs" end
    if cap then info = info .. " cap=" .. tostring(cap) .. "B/s" end
    return info
end

dissect_body[CHUNK_DATA] = function(tvb, pinfo, tree, n)
    if 24 > n then
        extra_bytes(tree, tvb, n, math.min(n, 20))
        return ""
    end
    tree:add(F.chunk_index, tvb(20, 4))
    local info = string.format(" idx=%d", tvb(20, 4):uint())
    return info .. add_sealed_payload(tree, tvb, n, 24)
end

dissect_body[CHUNK_DATA_WITH_PROOF] = function(tvb, pinfo, tree, n)
    local info = ""
    if 24 <= n then
        tree:add(F.chunk_index, tvb(20, 4))
        info = string.format(" idx=%d", tvb(20, 4):uint())
    end
    if 25 > n then
        extra_bytes(tree, tvb, n, math.min(n, 24))
        return info
    end
    local depth = tvb(24, 1):uint()
    tree:add(F.proof_depth, tvb(24, 1))
    info = info .. string.format(" depth=%d", depth)
    local present = math.min(depth, math.floor((n - 25) / HASH_LEN))
    if present > 0 then
        local pt = tree:add(F.proof, tvb(25, present * HASH_LEN))
        pt:append_text(string.format(" (%d sibling%s)", present, present == 1 and "" or "s"))
        for i = 0, present - 1 do
            local node = pt:add(F.proof_node, tvb(25 + i * HASH_LEN, HASH_LEN))
            node:prepend_text(string.format("[%d] ", i))
            if i == 0 then node:append_text(" (leaf level)") end
        end
    end
    if present < depth then
        -- BadProofDepth: the rest is not a payload.
        extra_bytes(tree, tvb, n, 25 + present * HASH_LEN)
        return info
    end
    return info .. add_sealed_payload(tree, tvb, n, 25 + depth * HASH_LEN)
end

dissect_body[FEC_PARITY] = function(tvb, pinfo, tree, n)
    if 28 > n then
        add_if(tree, F.fec_block_index, tvb, n, 20, 4)
        add_if(tree, F.fec_parity_index, tvb, n, 24, 1)
        add_if(tree, F.fec_fec_n, tvb, n, 25, 1)
        add_if(tree, F.fec_fec_k, tvb, n, 26, 1)
        extra_bytes(tree, tvb, n, used_of(n, { 24, 25, 26, 27 }))
        return ""
    end
    local block, p = tvb(20, 4):uint(), tvb(24, 1):uint()
    local fec_n, fec_k = tvb(25, 1):uint(), tvb(26, 1):uint()
    tree:add(F.fec_block_index, tvb(20, 4))
    local pi = tree:add(F.fec_parity_index, tvb(24, 1))
    tree:add(F.fec_fec_n, tvb(25, 1))
    tree:add(F.fec_fec_k, tvb(26, 1))
    local r = tree:add(F.fec_reserved, tvb(27, 1))
    note_reserved(r, tvb, n, 27, 1)
    if fec_n <= fec_k or p >= fec_n - fec_k then
        pi:add_proto_expert_info(e_semantic, string.format("Parity_Index %d: need p < FEC_N - FEC_K = %d", p, fec_n - fec_k))
    end
    local len = n - 28
    local item = tree:add(F.fec_payload, tvb(28, len))
    item:append_text(string.format(" (%d bytes)", len))
    tree:add(F.fec_payload_len, len):set_generated()
    return string.format(" block=%d p=%d n=%d k=%d len=%d", block, p, fec_n, fec_k, len)
end

local function entry_text(v)
    if bit.band(v, 0x80000000) ~= 0 then
        return string.format("parity %d/%d", bit.rshift(bit.band(v, 0x7fffff00), 8), bit.band(v, 0xff))
    end
    return string.format("%d", v)
end

dissect_body[NAK] = function(tvb, pinfo, tree, n)
    if 24 > n then
        add_if(tree, F.nak_count, tvb, n, 20, 2)
        extra_bytes(tree, tvb, n, used_of(n, { 22 }))
        return ""
    end
    local count, flags = tvb(20, 2):uint(), tvb(22, 2):uint()
    tree:add(F.nak_count, tvb(20, 2))
    local ft = tree:add(F.nak_flags, tvb(22, 2))
    ft:append_text(" (" .. flag_names(flags, nak_flag_names) .. ")")
    ft:add(F.nak_flags_token, tvb(22, 2))
    ft:add(F.nak_flags_proofs, tvb(22, 2))
    ft:add(F.nak_flags_proof_runs, tvb(22, 2))
    local r = ft:add(F.nak_flags_reserved, tvb(22, 2))
    if bit.band(flags, 0xfff8) ~= 0 then r:add_proto_expert_info(e_reserved) end

    local present = math.min(count, math.floor((n - 24) / 4))
    local shown = {}
    for i = 0, present - 1 do
        local off = 24 + 4 * i
        local v = tvb(off, 4):uint()
        local et = tree:add(F.nak_entry, tvb(off, 4))
        et:prepend_text(string.format("[%d] ", i))
        et:add(F.nak_entry_parity, tvb(off, 4))
        if bit.band(v, 0x80000000) ~= 0 then
            et:add(F.nak_entry_block, tvb(off, 4))
            et:add(F.nak_entry_parity_index, tvb(off, 4))
            et:append_text(string.format(" (parity: block %d, p %d)", bit.rshift(bit.band(v, 0x7fffff00), 8), bit.band(v, 0xff)))
        else
            et:add(F.nak_entry_chunk, tvb(off, 4))
            et:append_text(string.format(" (chunk %d)", v))
        end
        if i < 8 then shown[#shown + 1] = entry_text(v) end
    end
    local used = 24 + 4 * present
    if bit.band(flags, 1) ~= 0 and present == count then
        used = add_token(tree, tvb, n, used)
    end
    extra_bytes(tree, tvb, n, used)

    local info = string.format(" %d entr%s", count, count == 1 and "y" or "ies")
    if #shown > 0 then
        info = info .. " [" .. table.concat(shown, ", ") .. (count > #shown and ", ..." or "") .. "]"
    end
    if bit.band(flags, 1) ~= 0 then info = info .. " token" end
    if bit.band(flags, 2) ~= 0 then info = info .. " proofs" end
    if bit.band(flags, 4) ~= 0 then info = info .. " proof_runs" end
    return info
end

dissect_body[RATE_REPORT] = function(tvb, pinfo, tree, n)
    local info = ""
    if add_if(tree, F.rate_rtt_us, tvb, n, 20, 4) then
        info = info .. string.format(" rtt=%dus", tvb(20, 4):uint())
    end
    local item = add_if(tree, F.rate_loss_rate_q16, tvb, n, 24, 4)
    if item then
        local pct = q16_percent(tvb(24, 4):uint())
        item:append_text(" (" .. pct .. ")")
        info = info .. " loss=" .. pct
    end
    if add_if(tree, F.rate_window_size, tvb, n, 28, 4) then
        info = info .. string.format(" win=%d", tvb(28, 4):uint())
    end
    note_reserved(add_if(tree, F.rate_reserved, tvb, n, 32, 4), tvb, n, 32, 4)
    if add_if(tree, F.rate_timestamp_us, tvb, n, 36, 8) then
        tree:add(F.rate_time, tvb(36, 8), us_to_nstime(tvb(36, 8):uint64())):set_generated()
    end
    extra_bytes(tree, tvb, n, used_of(n, { 24, 28, 32, 36, 44 }))
    return info
end

dissect_body[KEEPALIVE] = function(tvb, pinfo, tree, n)
    if add_if(tree, F.ka_timestamp_us, tvb, n, 20, 8) then
        tree:add(F.ka_time, tvb(20, 8), us_to_nstime(tvb(20, 8):uint64())):set_generated()
    end
    note_reserved(add_if(tree, F.ka_reserved, tvb, n, 28, 4), tvb, n, 28, 4)
    extra_bytes(tree, tvb, n, used_of(n, { 28, 32 }))
    return ""
end

---------------------------------------------------------------------------
-- Main dissector
---------------------------------------------------------------------------

-- over_udp: the datagram's size is the tvb's size. Otherwise (raw Ethernet)
-- the packet ends after Length bytes and the rest of the frame is padding.
local function dissect(tvb, pinfo, tree, over_udp)
    local captured = tvb:len()
    local size = tvb:reported_len()
    local n = size
    local padding = 0
    if not over_udp and size >= HEADER_LEN and captured >= HEADER_LEN then
        local declared = tvb(2, 2):uint()
        if declared >= HEADER_LEN and declared < size then
            padding = size - declared
            n = declared
        end
    end
    -- Never read past what was captured (a snapped frame).
    local view = math.min(n, captured)

    pinfo.cols.protocol = "RGTP"
    local class, err = classify(tvb, n, captured, max_payload(over_udp))

    local root = tree:add(rgtp, tvb(0, math.min(n, captured)))
    if view >= 1 then root:add(F.version, tvb(0, 1)) end
    if view >= 2 then root:add(F.type, tvb(1, 1)) end
    if view >= 4 then
        local li = root:add(F.length, tvb(2, 2))
        if class == "LengthMismatch" then
            li:append_text(string.format(" (datagram has %d bytes)", n))
        end
    end
    local info
    if view < 2 then
        info = "RGTP"
    elseif tvb(0, 1):uint() ~= VERSION then
        info = string.format("RGTP version %d, type 0x%02x", tvb(0, 1):uint(), tvb(1, 1):uint())
    elseif type_names[tvb(1, 1):uint()] then
        info = type_names[tvb(1, 1):uint()]
    else
        info = string.format("Unknown type 0x%02x", tvb(1, 1):uint())
    end
    root:append_text(string.format(", %s, Len: %d", info, n))

    -- The body is only interpreted for version 1 and a known type.
    if view >= 20 and class ~= "UnknownVersion" and class ~= "UnknownType" then
        root:add(F.exposure_id, tvb(4, 16))
        info = info .. " id=" .. hex_prefix(tvb, 4, 4) .. ".."
        local body = dissect_body[tvb(1, 1):uint()](tvb, pinfo, root, view)
        if not rgtp.prefs.info_one_line then info = info .. body end
    elseif view > HEADER_LEN then
        root:add(F.extra, tvb(HEADER_LEN, view - HEADER_LEN))
    end

    if class then
        local mi = root:add(F.malformed, err):set_generated()
        mi:add_proto_expert_info(E[class], err)
        root:append_text(" [Malformed: " .. err .. "]")
        info = info .. " [Malformed: " .. err .. "]"
    end

    if padding > 0 and captured > n then
        local pi = root:add(F.padding, tvb(n, math.min(padding, captured - n)))
        if size <= ETH_MIN_PAYLOAD then
            pi:add_proto_expert_info(e_padding)
        else
            pi:set_text(string.format("Trailer: %d bytes after Length", padding))
            pi:add_proto_expert_info(e_trailer)
        end
    end

    pinfo.cols.info = info
    return size
end

-- A UDP GSO send captured uncut (spec §1.4): packets back to back, all as long
-- as the first but the last, each starting with version 1 and a Length equal to
-- its own size. Returns the first packet's size, or nil for anything else.
local function batch_size(tvb)
    local size = tvb:len()
    if size ~= tvb:reported_len() or size < HEADER_LEN then return nil end
    local first = tvb(2, 2):uint()
    if first < HEADER_LEN or first >= size then return nil end
    local off = 0
    while off < size do
        local len = math.min(first, size - off)
        if len < HEADER_LEN or tvb(off, 1):uint() ~= VERSION
            or tvb(off + 2, 2):uint() ~= len then
            return nil
        end
        off = off + first
    end
    return first
end

-- Each packet of a batch gets a tree of its own; Info names the batch and its
-- first packet.
local function dissect_batch(tvb, pinfo, tree, first)
    local size = tvb:len()
    local count, info = 0, nil
    local off = 0
    while off < size do
        local len = math.min(first, size - off)
        dissect(tvb(off, len):tvb(), pinfo, tree, true)
        count = count + 1
        if not info then info = tostring(pinfo.cols.info) end
        off = off + first
    end
    pinfo.cols.info = string.format("%d packets of one GSO send, captured uncut: %s, ...",
        count, info)
    return size
end

local ETHERTYPE_RGTP = 0x88b5
local PT_UDP = 3

function rgtp.dissector(tvb, pinfo, tree)
    -- Called from the ethertype table (raw Ethernet, match_uint = 0x88B5;
    -- also inside UDP tunnels such as VXLAN) and from the udp.port table
    -- (match_uint = the port).
    local over_udp = true
    if pinfo.match_uint == ETHERTYPE_RGTP then
        over_udp = pinfo.port_type == PT_UDP
            and (pinfo.src_port == ETHERTYPE_RGTP or pinfo.dst_port == ETHERTYPE_RGTP)
    end
    local first = over_udp and batch_size(tvb)
    if first then return dissect_batch(tvb, pinfo, tree, first) end
    return dissect(tvb, pinfo, tree, over_udp)
end

-- Heuristic on UDP: only datagrams that pass the header checks of §2.13
-- (version 1, type 1..8, Length equal to the datagram's size, at least the
-- type's fixed part) are claimed, and batches whose first packet passes them
-- with its own size.
local function heuristic(tvb, pinfo, tree)
    local size = tvb:len()
    if size < 24 or size ~= tvb:reported_len() then return false end
    if tvb(0, 1):uint() ~= VERSION then return false end
    local ty = tvb(1, 1):uint()
    if not type_names[ty] then return false end
    local declared = tvb(2, 2):uint()
    if declared < size and declared >= fixed_len[ty] then
        local first = batch_size(tvb)
        if first then
            dissect_batch(tvb, pinfo, tree, first)
            return true
        end
    end
    if declared ~= size or size < fixed_len[ty] then return false end
    dissect(tvb, pinfo, tree, true)
    return true
end

---------------------------------------------------------------------------
-- Registration
---------------------------------------------------------------------------

DissectorTable.get("ethertype"):add(ETHERTYPE_RGTP, rgtp)

local udp_table = DissectorTable.get("udp.port")
local current_port = 0
local function register_port()
    local port = rgtp.prefs.udp_port
    if port == current_port then return end
    if current_port ~= 0 then udp_table:remove(current_port, rgtp) end
    if port ~= 0 then udp_table:add(port, rgtp) end
    current_port = port
end
udp_table:add_for_decode_as(rgtp)
register_port()

function rgtp.prefs_changed()
    register_port()
end

rgtp:register_heuristic("udp", heuristic)
