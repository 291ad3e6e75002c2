-- Custom authentication: logins kept from an old system, as lua_auth.
--
--   lua_auth  lua/examples/custom_auth.lua;      # main scope
--
-- It is asked before the directory, for SMTP AUTH, IMAP and POP3 alike:
--   * a login in `logins`, with its password: logged in as its mailbox
--     user -- "jdoe" keeps working for the mailbox john.doe@example.org;
--   * a login in `logins` with a wrong password: refused, and the
--     directory is not asked (these logins are this table's alone);
--   * a login in `logins` from a protocol not in its `protocols`:
--     refused as well;
--   * any other login: nil, the directory decides as usual.
--
-- The mailbox user must exist in the directory (facteurctl user add):
-- that is where the mail is.  Passwords here are in the clear, which is
-- acceptable for a migration table that lives a few weeks in a file only
-- the server reads (chmod 640); for the long run, give the users a
-- directory password (facteurctl user passwd) and drop the entry.
--
-- The logins: below, or in lua/site/custom_auth.lua (better: outside the
-- shipped tree):
--   return { logins = {
--       jdoe = { user = "john.doe@example.org", password = "old secret",
--                protocols = { imap = true, pop3 = true } },  -- not smtp
--   } }

local facteur = require("facteur")
local settings = require("facteur.settings")

local conf = settings.load("custom_auth", {
    logins = {
        -- ["jdoe"] = { user = "john.doe@example.org", password = "change me" },
    },
    case_sensitive = false,     -- false: "JDoe" is "jdoe"
})

-- lower-cased once, and checked: a typo here is a configuration error
local logins = {}
for login, entry in pairs(conf.logins) do
    assert(type(login) == "string" and type(entry) == "table"
           and type(entry.user) == "string" and entry.user:find("@", 1, true)
           and type(entry.password) == "string" and entry.password ~= "",
           "custom_auth: logins[" .. tostring(login) .. "] needs user (an address) and password")
    logins[conf.case_sensitive and login or login:lower()] = entry
end

return function(login, password, client)
    if type(login) ~= "string" or type(password) ~= "string" then
        return nil
    end
    local entry = logins[conf.case_sensitive and login or login:lower()]
    if entry == nil then
        return nil                              -- not ours: the directory decides
    end
    local protocol = client and client.protocol or "?"
    if entry.protocols and not entry.protocols[protocol] then
        facteur.log("notice", string.format("custom_auth: %s refused over %s", login, protocol))
        return facteur.reject()
    end
    if password ~= entry.password then
        return facteur.reject()
    end
    return facteur.accept(entry.user)
end
