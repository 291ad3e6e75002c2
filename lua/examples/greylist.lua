-- Greylisting, as an rcpt hook.
--
--   smtp { lua_hook rcpt lua/examples/greylist.lua; }
--
-- The first time a (client network, sender, recipient) triplet is seen,
-- the recipient is refused with "451 4.7.1": a real mail server keeps the
-- message and tries again some minutes later, most spamware never comes
-- back.  A retry after `delay` seconds (and within `retry_window`) is let
-- through, and from then on that triplet passes at once for `pass_ttl`
-- seconds, renewed by every message.
--
-- Who is never greylisted: clients that authenticated (session.user) and
-- relay_from networks (session.relay_client) -- your own users and
-- servers -- and the recipients listed in `skip_recipients`.
--
-- The client counts as its network, /24 in IPv4 and /64 in IPv6, because
-- large senders retry from another address of the same pool.
--
-- The state is in facteur.kv (lua_kv_path), shared by every worker and
-- kept across restarts:
--   greylist:wait:NET|SENDER|RCPT   when the triplet was first seen
--   greylist:pass:NET|SENDER|RCPT   present while the triplet passes
--
-- Change the settings below, or without touching this file in
-- lua/site/greylist.lua:   return { delay = 60 }

local facteur = require("facteur")
local settings = require("facteur.settings")
local net = require("facteur.net")

local conf = settings.load("greylist", {
    delay = 300,                    -- seconds before a retry is let through
    retry_window = 24 * 3600,       -- a retry after this starts over
    pass_ttl = 36 * 24 * 3600,      -- how long a triplet that passed keeps passing
    ipv4_bits = 24,                 -- the client's network, IPv4
    ipv6_bits = 64,                 -- and IPv6
    skip_recipients = {             -- never greylisted (lower case)
        -- ["postmaster@example.org"] = true,
    },
})

-- an address as a key part: lower case, "<>" for the null sender, and cut
-- so that the whole key stays within facteur.kv's 480 bytes
local function part(address)
    if address == nil or address == "" then
        return "<>"
    end
    return address:lower():sub(1, 200)
end

return function(session, txn)
    if session.user or session.relay_client then
        return                                  -- our users: never greylisted
    end
    local rcpt = txn and txn.recipient
    if rcpt == nil or rcpt.address == nil then
        return
    end
    local to = part(rcpt.address)
    if conf.skip_recipients[to] then
        return
    end

    local key = net.prefix(session.ip, conf.ipv4_bits, conf.ipv6_bits)
                .. "|" .. part(txn.sender) .. "|" .. to

    if facteur.kv.get("greylist:pass:" .. key) then
        facteur.kv.set("greylist:pass:" .. key, "1", conf.pass_ttl)
        return
    end

    local now = facteur.now()
    local first = tonumber(facteur.kv.get("greylist:wait:" .. key))
    if first == nil then
        facteur.kv.set("greylist:wait:" .. key, string.format("%.3f", now), conf.retry_window)
        facteur.counter("greylist_deferred")
        return facteur.defer(451, string.format(
            "4.7.1 Greylisted, please try again in %d seconds", conf.delay))
    end

    local left = conf.delay - (now - first)
    if left > 0 then
        -- too early: the clock keeps running from the first attempt
        facteur.counter("greylist_deferred")
        return facteur.defer(451, string.format(
            "4.7.1 Greylisted, please try again in %d seconds", math.ceil(left)))
    end

    facteur.kv.set("greylist:pass:" .. key, "1", conf.pass_ttl)
    facteur.kv.del("greylist:wait:" .. key)
    facteur.counter("greylist_passed")
    facteur.log("info", string.format("greylist: %s passed after %d seconds", key,
                                      math.floor(now - first)))
end
