-- A rate limit per sender, as a mail hook.
--
--   smtp { lua_hook mail lua/examples/ratelimit.lua; }
--
-- Counts MAIL FROM commands per window of `window` seconds and refuses
-- the ones over `limit` with "450 4.7.1": a temporary refusal, so a
-- legitimate sender's server keeps the message and tries later, and a
-- compromised account cannot send more than `limit` messages an hour.
--
-- Who is counted:
--   * an authenticated client: its login (session.user), whatever sender
--     address it uses -- the account is what gets abused;
--   * anyone else: the sender address together with the client's network
--     (/24, /64).  The address alone would let anybody exhaust a real
--     sender's allowance by forging it; with the network, a forger only
--     uses up its own.
--
-- The windows are fixed (0-3600 s, 3600-7200 s, ...): simple and cheap,
-- one facteur.kv.incr per message, at the price of letting up to twice
-- the limit through around a window's edge.  Counters are shared by the
-- workers and expire with their window.
--
-- Settings below, or in lua/site/ratelimit.lua:   return { limit = 500 }

local facteur = require("facteur")
local settings = require("facteur.settings")
local net = require("facteur.net")

local conf = settings.load("ratelimit", {
    limit = 100,                -- messages per window, per authenticated user
    limit_unauthenticated = 100,-- per sender address and client network
    window = 3600,              -- seconds
    exempt = {                  -- never limited: logins or sender addresses (lower case)
        -- ["newsletter@example.org"] = true,
    },
})

return function(session, txn)
    if txn == nil then
        return
    end
    local who, limit
    if session.user then
        local user = session.user:lower()
        if conf.exempt[user] then
            return
        end
        who = "user:" .. user:sub(1, 300)
        limit = conf.limit
    else
        local sender = (txn.sender or ""):lower()
        if conf.exempt[sender] then
            return
        end
        who = "from:" .. (sender ~= "" and sender:sub(1, 300) or "<>")
              .. "|" .. net.prefix(session.ip)
        limit = conf.limit_unauthenticated
    end

    local window = math.floor(facteur.now() / conf.window)
    local count = facteur.kv.incr("ratelimit:" .. window .. ":" .. who, 1, conf.window)
    if count > limit then
        if count == limit + 1 then          -- once per window, not per message
            facteur.log("notice", string.format("ratelimit: %s is over %d messages in %d s",
                                                who, limit, conf.window))
        end
        facteur.counter("ratelimit_deferred")
        return facteur.defer(450, "4.7.1 Too many messages, please try again later")
    end
end
