-- facteur.net: client addresses as networks, for keys that should not
-- change when a big sender retries from another address of its pool.
--
--   local net = require("facteur.net")
--   net.prefix("192.0.2.77")              --> "192.0.2.0/24"
--   net.prefix("2001:db8:1:2:3::9")       --> "2001:db8:1:2::/64"
--   net.prefix("::ffff:192.0.2.77")       --> "192.0.2.0/24" (IPv4-mapped)
--   net.prefix("192.0.2.77", 32, 128)     --> "192.0.2.77/32"
--   net.parse("2001:db8::1")              --> 6, { 0x2001, 0xdb8, 0, 0, 0, 0, 0, 1 }
--
-- Anything that is not an IP address (a unix socket client, nil) comes
-- back as it is from prefix(), and as nil from parse(): a key made from it
-- is still a key.  Plain arithmetic, no bit library, so it runs the same
-- on LuaJIT and Lua 5.4.

local net = {}

local function parse4(s)
    local a, b, c, d = s:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
    if not a then
        return nil
    end
    local octets = { tonumber(a), tonumber(b), tonumber(c), tonumber(d) }
    for _, o in ipairs(octets) do
        if o > 255 or #tostring(o) > 3 then
            return nil
        end
    end
    return octets
end

-- "a:b::c" (and "::ffff:1.2.3.4") into 8 numbers, or nil
local function parse6(s)
    s = s:gsub("%%.*$", "")                       -- a zone: "fe80::1%eth0"
    if s:find("[^%x:%.]") then
        return nil
    end
    local tail = {}
    local v4 = s:match(":(%d+%.%d+%.%d+%.%d+)$")
    if v4 then
        local o = parse4(v4)
        if not o then
            return nil
        end
        tail = { o[1] * 256 + o[2], o[3] * 256 + o[4] }
        s = s:sub(1, #s - #v4) .. "x"             -- keeps "::" at the end visible
    end
    local function groups(part)
        local out = {}
        if part == "" then
            return out
        end
        for g in (part .. ":"):gmatch("([^:]*):") do
            if g == "x" then
                break
            end
            if not g:match("^%x%x?%x?%x?$") then
                return nil
            end
            out[#out + 1] = tonumber(g, 16)
        end
        return out
    end
    local head, rest = s:match("^(.-)::(.*)$")
    local left, right
    if head then
        if rest:find("::", 1, true) then
            return nil
        end
        left, right = groups(head), groups(rest)
    else
        left, right = groups(s), {}
    end
    if not left or not right then
        return nil
    end
    for _, g in ipairs(tail) do
        right[#right + 1] = g
    end
    local missing = 8 - #left - #right
    if (head and missing < 1) or (not head and missing ~= 0) then
        return nil
    end
    local out = {}
    for _, g in ipairs(left) do out[#out + 1] = g end
    for _ = 1, missing do out[#out + 1] = 0 end
    for _, g in ipairs(right) do out[#out + 1] = g end
    return out
end

-- 4 and the octets, 6 and the eight 16-bit groups, or nil
function net.parse(ip)
    if type(ip) ~= "string" then
        return nil
    end
    local o = parse4(ip)
    if o then
        return 4, o
    end
    local g = parse6(ip)
    if g then
        return 6, g
    end
    return nil
end

-- keep the first `bits` bits of numbers that are `width` bits wide each
local function mask(parts, width, bits)
    local out = {}
    for i, v in ipairs(parts) do
        local keep = bits - (i - 1) * width
        if keep >= width then
            out[i] = v
        elseif keep <= 0 then
            out[i] = 0
        else
            local unit = 2 ^ (width - keep)
            out[i] = math.floor(v / unit) * unit
        end
    end
    return out
end

function net.prefix(ip, v4bits, v6bits)
    v4bits = v4bits or 24
    v6bits = v6bits or 64
    local family, parts = net.parse(ip)
    if family == 6 and parts[1] == 0 and parts[2] == 0 and parts[3] == 0
       and parts[4] == 0 and parts[5] == 0 and parts[6] == 0xffff
    then
        family = 4                                -- IPv4-mapped: the IPv4 rule
        parts = { math.floor(parts[7] / 256), parts[7] % 256,
                  math.floor(parts[8] / 256), parts[8] % 256 }
    end
    if family == 4 then
        local m = mask(parts, 8, v4bits)
        return string.format("%d.%d.%d.%d/%d", m[1], m[2], m[3], m[4], v4bits)
    end
    if family == 6 then
        local m = mask(parts, 16, v6bits)
        local n = math.ceil(v6bits / 16)
        local hex = {}
        for i = 1, n do
            hex[i] = string.format("%x", m[i])
        end
        return table.concat(hex, ":") .. (n < 8 and "::" or "") .. "/" .. v6bits
    end
    return ip
end

return net
