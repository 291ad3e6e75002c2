-- Routing by recipient domain, as a route hook (just before delivery).
--
--   smtp {
--       smarthost  partner  mx.partner.example:25;
--       lua_hook   route  lua/examples/route_domain.lua;
--   }
--
-- One entry per domain, any of:
--   redirect = "user@domain"    every recipient of the domain goes to that
--                               address (a local user, an alias, or a
--                               remote address: then it is forwarded)
--   redirect = "@domain"        the same local part at another domain:
--                               a renamed domain
--   folder = "Name"             the local copies are filed in that folder of
--                               the mailbox (it must exist, else INBOX;
--                               create it with facteurctl mailbox create)
--   smarthost = "name"          queued for that relay: "smarthost NAME
--                               HOST[:PORT];" in the smtp block
--
-- The domain must be one that RCPT accepts: a local domain (with its users,
-- or a catch-all alias, "facteurctl alias add @domain target") -- or, for
-- a smarthost, any domain your authenticated users send to.  A recipient
-- that matches no entry is left as it is.
--
-- A folder applies to every copy of the recipient: for an alias (a
-- catch-all included), each of its users gets it in that folder.
--
-- Settings below, or in lua/site/route_domain.lua:
--   return { routes = { ["example.com"] = { folder = "Com" } } }

local facteur = require("facteur")
local settings = require("facteur.settings")

local conf = settings.load("route_domain", {
    routes = {
        -- a second domain whose mail lands in its own folder of one mailbox
        ["example.net"] = { redirect = "postmaster@example.org", folder = "example.net" },
        -- a renamed domain: bob@old.example.org is now bob@example.org
        ["old.example.org"] = { redirect = "@example.org" },
        -- a partner whose mail goes through their own relay
        ["partner.example"] = { smarthost = "partner" },
    },
})

-- check the table once, when the script loads: a typo is a configuration error
for domain, r in pairs(conf.routes) do
    assert(type(domain) == "string" and domain == domain:lower(),
           "route_domain: domains are lower case strings: " .. tostring(domain))
    assert(type(r) == "table", "route_domain: the route of " .. domain .. " is a table")
    for k in pairs(r) do
        assert(k == "redirect" or k == "folder" or k == "smarthost",
               "route_domain: " .. domain .. ": unknown key " .. tostring(k)
               .. " (redirect, folder, smarthost)")
    end
    assert(not (r.smarthost and (r.redirect or r.folder)),
           "route_domain: " .. domain .. ": a smarthost goes alone")
end

local function route(txn, rcpt, r)
    local address = rcpt.address
    if r.smarthost then
        txn:relay(r.smarthost, address)
        return
    end
    if r.redirect then
        local to = r.redirect
        if to:sub(1, 1) == "@" then
            to = address:match("^(.*)@[^@]*$") .. to
        end
        local n, err = txn:redirect(to, address)
        if n == nil then
            -- no such user at the new address: keep the old route, say why
            facteur.log("warn", string.format("route_domain: <%s> -> <%s>: %s",
                                              address, to, err))
            return
        end
        address = to
    end
    if r.folder then
        txn:deliver(r.folder, address)
    end
end

return function(session, txn)
    if txn == nil then
        return
    end
    for _, rcpt in ipairs(txn:recipients()) do
        local r = rcpt.domain and conf.routes[rcpt.domain]
        if r then
            route(txn, rcpt, r)
        end
    end
end
