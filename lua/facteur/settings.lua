-- facteur.settings: the tunables of a script, with a place to change them
-- that is not the script itself.
--
--   local settings = require("facteur.settings")
--   local conf = settings.load("greylist", {
--       delay = 300,        -- seconds before a retry is let through
--   })
--
-- load(name, defaults) returns a new table: the defaults, replaced key by
-- key by what the module "site.NAME" returns, when there is one on
-- lua_package_path (by default lua/site/NAME.lua under the prefix):
--
--   -- lua/site/greylist.lua
--   return { delay = 60 }
--
-- so the shipped scripts stay as they are and an upgrade that replaces
-- lua/examples/ keeps your values.  A table value is replaced whole, not
-- merged.  A key that the defaults do not have (a typo) or a value of
-- another type is an error when the configuration loads: `facteur -t`
-- names the file and the key.  A default of false means "off" and takes
-- any value.
--
-- The site file runs once per worker, when the scripts load (at start and
-- at every reload), like the top level of a hook script.

local settings = {}

-- the file require() would load for modname, or nil
local function find(modname)
    if package.searchpath then                  -- LuaJIT, Lua 5.2 and later
        return (package.searchpath(modname, package.path))
    end
    local path = modname:gsub("%.", "/")
    for template in package.path:gmatch("[^;]+") do
        local file = template:gsub("%?", path)
        local f = io.open(file, "r")
        if f then
            f:close()
            return file
        end
    end
    return nil
end

function settings.load(name, defaults)
    assert(type(name) == "string" and name:match("^[%w_]+$"),
           "facteur.settings.load: the name is letters, digits and _")
    assert(type(defaults) == "table", "facteur.settings.load: the defaults are a table")

    local conf = {}
    for k, v in pairs(defaults) do
        conf[k] = v
    end

    local modname = "site." .. name
    local file = find(modname)
    if file == nil then
        return conf
    end
    local site = require(modname)
    if type(site) ~= "table" then
        error(string.format("%s: returns a %s, not a table of settings for %s",
                            file, type(site), name), 0)
    end
    for k, v in pairs(site) do
        local d = defaults[k]
        if d == nil then
            error(string.format("%s: unknown setting \"%s\" for %s", file, tostring(k), name), 0)
        end
        if d ~= false and type(v) ~= type(d) then
            error(string.format("%s: %s.%s is a %s, it should be a %s",
                                file, name, k, type(v), type(d)), 0)
        end
        conf[k] = v
    end
    return conf
end

return settings
