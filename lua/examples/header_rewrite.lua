-- Header rewriting, as a data_headers hook.
--
--   smtp { lua_hook data_headers lua/examples/header_rewrite.lua; }
--
-- Mail your users send (submission, or any authenticated client):
--   * the headers that tell the world about the inside -- the Received
--     lines of the user's own machine and of internal relays, X-Originating-IP,
--     the names in strip_prefixes -- are removed;
--   * an Organization header is added when the message has none
--     (organization = false: not added).
-- Mail from outside (MX, not authenticated):
--   * the Subject gets external_tag in front ("[EXT] Lunch?"), once, so
--     your users see at a glance what did not come from a colleague;
--     the tags of other systems listed in subject_tags are replaced by it
--     first, so a message forwarded back and forth does not collect
--     "[EXTERNAL] [EXT] [External]".
--
-- The edits are in the stored message; the headers this server adds
-- itself (its own Received, Return-Path) come after this hook.
--
-- Settings below, or in lua/site/header_rewrite.lua:
--   return { organization = "Example Ltd", external_tag = false }

local facteur = require("facteur")
local settings = require("facteur.settings")

local conf = settings.load("header_rewrite", {
    strip = { "Received", "X-Originating-IP", "X-Mailer" },
    strip_prefixes = { "X-Internal-" },
    organization = false,
    external_tag = "[EXT]",
    subject_tags = { "[EXTERNAL]", "[External]", "[EXT]" },   -- plain text, not patterns
})

local prefixes = {}
for i, p in ipairs(conf.strip_prefixes) do
    prefixes[i] = p:lower()
end

local function strip_internal(txn)
    for _, name in ipairs(conf.strip) do
        txn:remove_header(name)
    end
    if #prefixes == 0 then
        return
    end
    local seen = {}
    for _, h in ipairs(txn:headers()) do
        local lname = h.name:lower()
        for _, p in ipairs(prefixes) do
            if lname:sub(1, #p) == p and not seen[lname] then
                seen[lname] = true
                txn:remove_header(h.name)       -- every header of that name
            end
        end
    end
end

-- "[EXTERNAL] [EXT] hello" -> "hello": the known tags off the front
local function untag(subject)
    local again = true
    while again do
        again = false
        subject = subject:gsub("^%s+", "")
        for _, tag in ipairs(conf.subject_tags) do
            if subject:sub(1, #tag) == tag then
                subject = subject:sub(#tag + 1)
                again = true
            end
        end
    end
    return subject
end

local function tag_subject(txn)
    local subject = txn:header("Subject")
    if subject == nil then
        return                                  -- nothing to tag
    end
    -- one line again (a header value we set is one line): unfolded, and
    -- no control characters, which a hostile sender may have put there
    local line = subject:gsub("\r?\n[ \t]*", " "):gsub("%c", " ")
    local tagged = conf.external_tag .. " " .. untag(line)
    if #tagged > 900 then
        tagged = tagged:sub(1, 900)
    end
    if tagged ~= subject then
        txn:replace_header("Subject", tagged)
    end
end

return function(session, txn)
    if txn == nil then
        return
    end
    if session.user or session.role == "submission" then
        strip_internal(txn)
        if conf.organization and txn:header("Organization") == nil then
            txn:add_header("Organization", conf.organization)
        end
    elseif conf.external_tag and not session.relay_client then
        tag_subject(txn)
    end
end
