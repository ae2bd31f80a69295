-- tej.lua: a Wireshark dissector for TEJ (tej-protoc v1) frames over TCP
-- (spec/tej.md).
--
-- A frame is  u8 status (MSB 1, low 7 bits a custom status; 2 is a ping),
-- u8 version (1), u64 file count, then per file  u16 name length, name
-- (UTF-8), u64 data length, data,  then  u64 message length, message; all
-- big-endian. Frames are reassembled across TCP segments, and several frames
-- in one segment are all decoded. TEJ has no port of its own: set the "TCP
-- port" preference or use Decode As (TCP port -> TEJ), e.g.
--   tshark -X lua_script:tej.lua -d tcp.port==47474,tej -r capture.pcap
-- Written against the Wireshark 4.0 Lua API.

local tej = Proto("tej", "TEJ framing (tej-protoc v1)")

local f = {
    status = ProtoField.uint8("tej.status", "Status", base.HEX),
    msb = ProtoField.bool("tej.status.msb", "Frame bit (MSB)", 8, nil, 0x80),
    custom = ProtoField.uint8("tej.status.custom", "Custom status", base.DEC, nil, 0x7f),
    ping = ProtoField.bool("tej.ping", "Ping"),
    version = ProtoField.uint8("tej.version", "Version"),
    file_count = ProtoField.uint64("tej.file_count", "File count"),
    file = ProtoField.none("tej.file", "File"),
    name_len = ProtoField.uint16("tej.file.name_len", "Name length (bytes)"),
    name = ProtoField.string("tej.file.name", "Name", base.UNICODE),
    length = ProtoField.uint64("tej.file.length", "Data length"),
    data = ProtoField.bytes("tej.file.data", "Data"),
    msg_len = ProtoField.uint64("tej.message_len", "Message length"),
    message = ProtoField.bytes("tej.message", "Message"),
    malformed = ProtoField.string("tej.malformed", "Malformed"),
}
tej.fields = { f.status, f.msb, f.custom, f.ping, f.version, f.file_count, f.file, f.name_len,
    f.name, f.length, f.data, f.msg_len, f.message, f.malformed }

local e = {
    msb = ProtoExpert.new("tej.expert.msb_zero", "TEJ status MSB is 0: a protocol error",
        expert.group.MALFORMED, expert.severity.ERROR),
    version = ProtoExpert.new("tej.expert.version", "TEJ version is not 1",
        expert.group.PROTOCOL, expert.severity.WARN),
    huge = ProtoExpert.new("tej.expert.huge", "TEJ length too large to reassemble",
        expert.group.MALFORMED, expert.severity.ERROR),
    ping = ProtoExpert.new("tej.expert.ping", "TEJ ping", expert.group.SEQUENCE, expert.severity.CHAT),
}
tej.experts = { e.msb, e.version, e.huge, e.ping }

tej.prefs.port = Pref.uint("TCP port", 0, "Decode this TCP port as TEJ (0: none; Decode As works on any port)")
tej.prefs.max_reassembly = Pref.uint("Largest frame reassembled (MiB)", 256,
    "A frame declaring more than this is shown as malformed instead of reassembled")

-- Walks the frame at `off` without building a tree. Returns its end, or
-- nil and the bytes needed (0: unknown, at least one more segment), or
-- false and a reason when a declared length is beyond reassembly.
local function measure(tvb, off)
    local len = tvb:len()
    local limit = tej.prefs.max_reassembly * 1048576
    local at = off
    local function need(n)
        if at + n > len then
            return at + n - len
        end
        return nil
    end
    local function u64(o)
        local v = tvb(o, 8):uint64()
        if v > UInt64(limit) then
            return nil
        end
        return v:tonumber()
    end
    local n = need(10)
    if n then return nil, n end
    local count = u64(at + 2)
    if count == nil then return false, "file count" end
    at = at + 10
    for _ = 1, count do
        n = need(2)
        if n then return nil, n end
        at = at + 2 + tvb(at, 2):uint()
        n = need(8)
        if n then return nil, n end
        local dl = u64(at)
        if dl == nil then return false, "file length" end
        at = at + 8 + dl
        if at - off > limit then return false, "frame size" end
    end
    n = need(8)
    if n then return nil, n end
    local ml = u64(at)
    if ml == nil then return false, "message length" end
    at = at + 8 + ml
    if at > len then return nil, at - len end
    return at
end

-- Adds the complete frame [off, stop) to `tree`; returns a summary.
local function frame_tree(tvb, pinfo, tree, off, stop)
    local t = tree:add(tej, tvb(off, stop - off), "TEJ frame")
    local status = tvb(off, 1):uint()
    local custom = bit.band(status, 0x7f)
    local st = t:add(f.status, tvb(off, 1))
    st:add(f.msb, tvb(off, 1))
    st:add(f.custom, tvb(off, 1))
    local ver = t:add(f.version, tvb(off + 1, 1))
    if tvb(off + 1, 1):uint() ~= 1 then
        ver:add_proto_expert_info(e.version)
    end
    if custom == 2 then
        t:add(f.ping, tvb(off, 1), true):set_generated()
        t:add_proto_expert_info(e.ping)
    end
    local count = tvb(off + 2, 8):uint64():tonumber()
    t:add(f.file_count, tvb(off + 2, 8))
    local at = off + 10
    local names = {}
    for i = 1, count do
        local nl = tvb(at, 2):uint()
        local dl = tvb(at + 2 + nl, 8):uint64():tonumber()
        local ft = t:add(f.file, tvb(at, 2 + nl + 8 + dl))
        ft:add(f.name_len, tvb(at, 2))
        local name = ""
        if nl > 0 then
            name = tvb(at + 2, nl):string(ENC_UTF_8)
        end
        ft:add_packet_field(f.name, tvb(at + 2, nl), ENC_UTF_8)
        ft:add(f.length, tvb(at + 2 + nl, 8))
        if dl > 0 then
            ft:add(f.data, tvb(at + 10 + nl, dl))
        end
        ft:set_text(string.format("File %d: %s (%d bytes)", i, name, dl))
        names[#names + 1] = name
        at = at + 10 + nl + dl
    end
    local ml = tvb(at, 8):uint64():tonumber()
    t:add(f.msg_len, tvb(at, 8))
    if ml > 0 then
        t:add(f.message, tvb(at + 8, ml))
    end
    local summary
    if custom == 2 then
        summary = "ping"
    else
        summary = string.format("status=%d files=%d msg=%d", custom, count, ml)
    end
    t:append_text(", " .. summary)
    return summary
end

function tej.dissector(tvb, pinfo, tree)
    local len = tvb:len()
    local off = 0
    local summaries = {}
    while off < len do
        local status = tvb(off, 1):uint()
        if bit.band(status, 0x80) == 0 then
            local t = tree:add(tej, tvb(off), "TEJ")
            local st = t:add(f.status, tvb(off, 1))
            st:add(f.msb, tvb(off, 1))
            t:add(f.malformed, "status MSB is 0"):set_generated()
            st:add_proto_expert_info(e.msb)
            summaries[#summaries + 1] = "protocol error (MSB 0)"
            break
        end
        local stop, why = measure(tvb, off)
        if stop == false then
            local t = tree:add(tej, tvb(off), "TEJ")
            t:add(f.status, tvb(off, 1))
            t:add(f.malformed, "declared " .. why .. " too large"):set_generated()
            t:add_proto_expert_info(e.huge, "TEJ: declared " .. why .. " too large to reassemble")
            summaries[#summaries + 1] = "malformed"
            break
        elseif stop == nil then
            -- Ask TCP for the rest of this frame.
            pinfo.desegment_offset = off
            if why and why > 0 then
                pinfo.desegment_len = why
            else
                pinfo.desegment_len = DESEGMENT_ONE_MORE_SEGMENT
            end
            break
        end
        summaries[#summaries + 1] = frame_tree(tvb, pinfo, tree, off, stop)
        off = stop
    end
    if #summaries > 0 then
        pinfo.cols.protocol:set("TEJ")
        pinfo.cols.info:set("TEJ " .. table.concat(summaries, "; "))
    end
    return len
end

local tcp_table = DissectorTable.get("tcp.port")
tcp_table:add_for_decode_as(tej)

local registered = 0
function tej.prefs_changed()
    if registered ~= 0 then
        tcp_table:remove(registered, tej)
        registered = 0
    end
    if tej.prefs.port ~= 0 then
        tcp_table:add(tej.prefs.port, tej)
        registered = tej.prefs.port
    end
end
