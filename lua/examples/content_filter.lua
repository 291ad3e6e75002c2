-- A content filter with PCRE2 regular expressions, as a data_end hook.
--
--   smtp { lua_hook data_end lua/examples/content_filter.lua; }
--
-- Each rule looks at one header or at the body, and a message that
-- matches a rule is refused with "550 5.7.1 <the rule's text>" before the
-- client hears 250: nothing is stored, and the sender's server tells the
-- sender.  The regexes are compiled once, when the script loads (a bad one
-- is a configuration error, with PCRE2's message), and run under a match
-- limit, so a pathological one costs an error (451), not a stuck worker.
--
-- Only the first `body_max` bytes of the body are looked at: enough for
-- the text and the MIME headers of the attachments, and a bounded cost
-- per message whatever its size.  The body is as sent: base64 and
-- quoted-printable parts are not decoded; attachment names are in the
-- clear in their MIME headers, which is what the "attachment" rule reads.
--
-- Clients that authenticated are not filtered (skip_authenticated): they
-- are your users, and a refusal would only puzzle them.
--
-- Settings below, or in lua/site/content_filter.lua; a rule is
-- { where = "Header-Name" or "body", pattern = PCRE2, flags = "imsxu",
--   text = "what the sender is told" }.

local facteur = require("facteur")
local settings = require("facteur.settings")

local conf = settings.load("content_filter", {
    body_max = 256 * 1024,
    skip_authenticated = true,
    rules = {
        {
            where = "body",
            -- a MIME part named like a program: mailed malware's usual shape
            pattern = [[^content-(?:type|disposition):[^\r\n]*(?:\r?\n[ \t][^\r\n]*)*]]
                   .. [[name\*?=\s*"?[^"\r\n;]*\.(?:exe|scr|pif|com|bat|cmd|vbs|js|jar|lnk)"?]],
            flags = "im",
            text = "Executable attachments are not accepted here",
        },
        {
            where = "Subject",
            pattern = [[\b(?:v[i1]agra|c[i1]al[i1]s)\b]],
            flags = "i",
            text = "Message content rejected",
        },
        {
            where = "body",
            pattern = [[\bverify your (?:account|mailbox) within 24 hours\b]],
            flags = "i",
            text = "Message content rejected as phishing",
        },
    },
})

-- compiled once per worker; a broken pattern fails here, at load time
local rules = {}
for i, rule in ipairs(conf.rules) do
    assert(type(rule.where) == "string" and type(rule.pattern) == "string",
           "content_filter: rule " .. i .. " needs where and pattern")
    rules[i] = {
        where = rule.where,
        body = rule.where:lower() == "body",
        re = facteur.regex(rule.pattern, rule.flags or ""),
        text = rule.text or "Message content rejected",
        name = rule.name or ("rule " .. i),
    }
end

-- every value of a header (it may appear more than once, or not at all)
local function header_matches(txn, name, re)
    local n = 1
    while true do
        local value = txn:header(name, n)
        if value == nil then
            return false
        end
        if re:match(value) then
            return true
        end
        n = n + 1
    end
end

return function(session, txn)
    if txn == nil or (conf.skip_authenticated and session.user) then
        return
    end
    local body                                  -- read once, when a rule needs it
    for _, rule in ipairs(rules) do
        local hit
        if rule.body then
            body = body or txn:body(conf.body_max) or ""
            hit = rule.re:match(body)
        else
            hit = header_matches(txn, rule.where, rule.re)
        end
        if hit then
            facteur.counter("content_filter_rejected")
            facteur.log("notice", string.format("content_filter: %s matched, message %s from <%s>",
                                                rule.name, txn.id or "?", txn.sender or ""))
            return facteur.reject(550, "5.7.1 " .. rule.text)
        end
    end
end
