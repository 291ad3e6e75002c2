-- Filing into folders by List-Id and Subject, as a route hook.
--
--   smtp { lua_hook route lua/examples/file_by_list.lua; }
--   lmtp { lua_hook route lua/examples/file_by_list.lua; }
--
-- Rules, the first that matches wins:
--   lists      List-Id (the id between < >, lower case) -> folder
--   subjects   a Lua pattern on the Subject, matched case-insensitively
--              (write it in lower case) -> folder.  The Subject as the
--              data_headers hooks left it: header_rewrite.lua puts "[EXT] "
--              in front of mail from outside, so anchor with care.
--   other_lists  any other message with a List-Id -> this folder
--              (false: leave them in INBOX)
--
-- Only copies still bound for INBOX are filed: a "user+folder@" address
-- or an earlier hook's choice wins.  Folders must exist in the mailbox
-- (facteurctl mailbox create USER NAME; "/" separates levels); a copy for
-- a mailbox without the folder goes to INBOX.  An alias's copies are
-- filed for each of its users.
--
-- Per user rules do not belong here (that is Sieve's job); these are the
-- server-wide ones: the company's lists, alerts, reports.
--
-- Settings below, or in lua/site/file_by_list.lua:
--   return { lists = { ["dev.lists.example.org"] = "Lists/dev" } }

local facteur = require("facteur")
local settings = require("facteur.settings")

local conf = settings.load("file_by_list", {
    lists = {
        ["announce.example.org"] = "Lists/announce",
    },
    subjects = {
        { "%[alert%]", "Alerts" },               -- "[ALERT] disk full on db1"
        { "^cron <[^>]*> ", "Reports" },         -- "Cron <root@host> backup"
    },
    other_lists = "Lists",
})

-- "Announcements <announce.example.org>" -> "announce.example.org"
local function list_id(value)
    if value == nil then
        return nil
    end
    local id = value:match("<([^>]+)>") or value:match("^%s*(%S+)")
    return id and id:lower()
end

local function folder_for(txn)
    local id = list_id(txn:header("List-Id"))
    if id and conf.lists[id] then
        return conf.lists[id]
    end
    local subject = (txn:header("Subject") or ""):lower()
    for _, rule in ipairs(conf.subjects) do
        if subject:find(rule[1]) then
            return rule[2]
        end
    end
    if id and conf.other_lists then
        return conf.other_lists
    end
    return nil
end

return function(session, txn)
    if txn == nil then
        return
    end
    local folder = folder_for(txn)
    if folder == nil then
        return
    end
    for _, rcpt in ipairs(txn:recipients()) do
        -- an alias has no mailbox of its own: its users' INBOX
        if rcpt.route == "local" and (rcpt.mailbox == "INBOX"
                                      or (rcpt.user == nil and rcpt.mailbox == nil)) then
            txn:deliver(folder, rcpt.address)
        end
    end
end
