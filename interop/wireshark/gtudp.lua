-- gtudp.lua: a Wireshark dissector for gtUDP reliable datagrams (spec/gtudp.md).
--
-- A datagram is  magic || type || identity (4 bytes) || payload,  the payload
-- only on DATA. The magic (empty by default) and the three type codes (one
-- byte each by default: DATA 0x1D, RECV 0x5F, ACK 0xAE) are preferences, as
-- both ends of a gtUDP exchange configure them. gtUDP has no port of its own:
-- set the "UDP port" preference, or use Decode As (UDP port -> GTUDP), e.g.
--   tshark -X lua_script:gtudp.lua -d udp.port==9000,gtudp -r capture.pcap
-- Written against the Wireshark 4.0 Lua API.

local gtudp = Proto("gtudp", "gtUDP reliable datagrams")

local KINDS = { "DATA", "RECV", "ACK" }

local f = {
    magic = ProtoField.bytes("gtudp.magic", "Magic"),
    type_code = ProtoField.bytes("gtudp.type_code", "Type code"),
    type = ProtoField.string("gtudp.type", "Type"),
    identity = ProtoField.uint32("gtudp.identity", "Identity", base.HEX),
    payload_len = ProtoField.uint32("gtudp.payload_len", "Payload length"),
    payload = ProtoField.bytes("gtudp.payload", "Payload"),
    trailing = ProtoField.bytes("gtudp.trailing", "Bytes after the header"),
    malformed = ProtoField.string("gtudp.malformed", "Malformed"),
}
gtudp.fields = { f.magic, f.type_code, f.type, f.identity, f.payload_len, f.payload,
    f.trailing, f.malformed }

local e = {
    short = ProtoExpert.new("gtudp.short", "gtUDP datagram too short",
        expert.group.MALFORMED, expert.severity.ERROR),
    magic = ProtoExpert.new("gtudp.wrong_magic", "gtUDP magic differs from the preference",
        expert.group.MALFORMED, expert.severity.ERROR),
    unknown = ProtoExpert.new("gtudp.unknown_type", "Unknown gtUDP type code",
        expert.group.MALFORMED, expert.severity.ERROR),
    payload = ProtoExpert.new("gtudp.payload_on_control", "Payload on a RECV or ACK",
        expert.group.MALFORMED, expert.severity.ERROR),
}
gtudp.experts = { e.short, e.magic, e.unknown, e.payload }

gtudp.prefs.port = Pref.uint("UDP port", 0, "Decode this UDP port as gtUDP (0: none; Decode As works on any port)")
gtudp.prefs.magic = Pref.string("Magic (hex)", "", "Bytes every datagram starts with, in hex; empty for none")
gtudp.prefs.data = Pref.string("DATA type (hex)", "1d", "Type code of DATA, in hex")
gtudp.prefs.recv = Pref.string("RECV type (hex)", "5f", "Type code of RECV, in hex")
gtudp.prefs.ack = Pref.string("ACK type (hex)", "ae", "Type code of ACK, in hex")

-- Lower-case hex without separators, or nil if `s` is not hex.
local function norm_hex(s)
    local h = string.lower(string.gsub(s or "", "[%s:%-]", ""))
    if h:find("[^0-9a-f]") or (#h % 2) ~= 0 then
        return nil
    end
    return h
end

-- The profile from the preferences: magic and the type codes, in hex.
local function profile()
    local p = {
        magic = norm_hex(gtudp.prefs.magic) or "",
        codes = {
            norm_hex(gtudp.prefs.data) or "1d",
            norm_hex(gtudp.prefs.recv) or "5f",
            norm_hex(gtudp.prefs.ack) or "ae",
        },
    }
    p.type_len = math.floor(#p.codes[1] / 2)
    return p
end

local function malformed(tree, item, pinfo, expert_field, text)
    tree:add(f.malformed, text):set_generated()
    item:add_proto_expert_info(expert_field, "gtUDP: " .. text)
    pinfo.cols.info:set("gtUDP malformed: " .. text)
end

function gtudp.dissector(tvb, pinfo, tree)
    local len = tvb:len()
    local p = profile()
    local mlen = math.floor(#p.magic / 2)
    local hdr = mlen + p.type_len + 4
    pinfo.cols.protocol:set("gtUDP")
    local t = tree:add(gtudp, tvb(), "gtUDP")
    if len < hdr then
        malformed(t, t, pinfo, e.short, string.format("too short (%d bytes, header is %d)", len, hdr))
        return len
    end
    if mlen > 0 then
        local item = t:add(f.magic, tvb(0, mlen))
        if tvb(0, mlen):bytes():tohex():lower() ~= p.magic then
            malformed(t, item, pinfo, e.magic, "wrong magic")
            return len
        end
    end
    local code_tvb = tvb(mlen, p.type_len)
    local code = code_tvb:bytes():tohex():lower()
    local kind
    for i, c in ipairs(p.codes) do
        if c == code then
            kind = KINDS[i]
        end
    end
    local code_item = t:add(f.type_code, code_tvb)
    if kind == nil then
        malformed(t, code_item, pinfo, e.unknown, "unknown type 0x" .. code)
        return len
    end
    t:add(f.type, code_tvb, kind)
    local id_tvb = tvb(mlen + p.type_len, 4)
    t:add(f.identity, id_tvb)
    local rest = len - hdr
    local info = string.format("%s id=0x%08x", kind, id_tvb:uint())
    if kind == "DATA" then
        t:add(f.payload_len, rest):set_generated()
        if rest > 0 then
            t:add(f.payload, tvb(hdr, rest))
        end
        info = info .. string.format(" len=%d", rest)
    elseif rest > 0 then
        local item = t:add(f.trailing, tvb(hdr, rest))
        malformed(t, item, pinfo, e.payload, "payload on " .. kind)
        return len
    end
    t:append_text(", " .. info)
    pinfo.cols.info:set("gtUDP " .. info)
    return len
end

local udp_table = DissectorTable.get("udp.port")
udp_table:add_for_decode_as(gtudp)

local registered = 0
function gtudp.prefs_changed()
    if registered ~= 0 then
        udp_table:remove(registered, gtudp)
        registered = 0
    end
    if gtudp.prefs.port ~= 0 then
        udp_table:add(gtudp.prefs.port, gtudp)
        registered = gtudp.prefs.port
    end
end
