-- The sandbox every script runs in (Redis 7's rules), built once per Lua state.
-- __host is the Python side (scripting/runtime.py): call, sha1hex, log, setresp, set_repl, hook.
local host = ...
local G = _G
local error, type, tostring, setmetatable, rawset, rawget, getmetatable, pairs =
    error, type, tostring, setmetatable, rawset, rawget, getmetatable, pairs
local select, unpack, xpcall, setfenv, loadstring = select, unpack, xpcall, setfenv, loadstring
local dbg = debug

local READONLY = "Attempt to modify a readonly table"
local readonly = setmetatable({}, {__mode = "k"})

local function refuse_write() error(READONLY, 2) end

-- A read-only view of a table (Redis 7 marks library tables and globals read-only).
local function frozen(t)
  local view = setmetatable({}, {__index = t, __newindex = refuse_write, __metatable = false})
  readonly[view] = true
  return view
end

local env = {}          -- what a script sees as globals (behind a read-only view)
local keep = {
  "xpcall", "tostring", "setmetatable", "next", "assert", "tonumber", "rawequal",
  "collectgarbage", "getmetatable", "pcall", "type", "select", "unpack", "gcinfo",
  "pairs", "loadstring", "ipairs", "error", "load",
}
for _, name in ipairs(keep) do env[name] = G[name] end
-- An error table (or redis.call's error, a Python exception to Lua) reaches a pcall as its
-- text, as in Redis 7.
local pcall_, unwrap = pcall, host.unwrap
local function caught(ok, ...)
  if not ok then
    local e = ...
    if type(e) == "userdata" then return false, host.lib_message(e, nil) or unwrap(e).err end
    if type(e) == "table" and type(rawget(e, "err")) == "string" then return false, e.err end
  end
  return ok, ...
end
env.rawset = function(t, k, v)
  if readonly[t] then error(READONLY, 0) end
  return rawset(t, k, v)
end
for _, lib in ipairs({"string", "math", "table", "coroutine"}) do env[lib] = frozen(G[lib]) end

-- redis.*
local redis = {}
local function raise(e)
  error(e, 0)
end
-- Python callables are C functions to Lua: a tail call keeps the script's frame, so an error
-- names the script's line. redis.call raises a CallError (its .err readable from Lua).
redis.call = host.call
redis.pcall = host.pcall
redis.sha1hex = function(s)
  if s == nil or select("#", s) == 0 then raise({err = "ERR wrong number of arguments"}) end
  return host.sha1hex(s)
end
redis.error_reply = function(e)
  if type(e) ~= "string" then raise({err = "ERR wrong number or type of arguments"}) end
  if e:sub(1, 1) == "-" then e = e:sub(2) end
  return {err = e}
end
redis.status_reply = function(s)
  if type(s) ~= "string" then raise({err = "ERR wrong number or type of arguments"}) end
  return {ok = s}
end
redis.log = function(level, ...)
  local n = select("#", ...)
  if n == 0 then raise({err = "ERR redis.log() requires two arguments or more."}) end
  if type(level) ~= "number" then raise({err = "ERR First argument must be a number (log level)."}) end
  local parts = {}
  for i = 1, n do parts[i] = tostring((select(i, ...))) end
  host.log(level, table.concat(parts, " "))
end
redis.setresp = function(n) host.setresp(n) end
redis.set_repl = function(n) host.set_repl(n) end
redis.replicate_commands = function() return true end
redis.breakpoint = function() return false end
redis.debug = function() end
redis.acl_check_cmd = function(...) return host.acl_check_cmd(...) end
redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3
redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL = 0, 1, 2, 2, 3
redis.REDIS_VERSION = host.version
redis.REDIS_VERSION_NUM = host.version_num
env.redis = frozen(redis)
env.bit = frozen(host.bit)
env.cjson = frozen(host.cjson)

env.cmsgpack = frozen(host.cmsgpack)
env.struct = frozen(host.struct)

-- cmsgpack and struct are Python (scripting/lua_cmsgpack.py, lua_struct.py); their errors read
-- as the C libraries' luaL_error makes them: at the caller's line, naming the function as the
-- caller called it. Worked out where the error is raised, while the stack still holds the
-- caller: in the handler of a script's run, or of a pcall of a Lua function. pcall of a library
-- function itself gets '?' and no line, as from C.
local lib_message = host.lib_message
local function lib_text(err, level)  -- level: the raising function's, seen from here
  local who = dbg.getinfo(level, "n")
  local caller = dbg.getinfo(level + 1, "Sl")
  local message, at_caller = lib_message(err, who and who.name)
  if message and at_caller and caller and caller.currentline > 0 then
    message = caller.short_src .. ":" .. caller.currentline .. ": " .. message
  end
  return message
end
local function lib_handler(err)
  if type(err) == "userdata" then return lib_text(err, 3) or err end
  return err
end
env.pcall = function(f, ...)
  if type(f) ~= "function" or dbg.getinfo(f, "S").what ~= "Lua" then
    return caught(pcall_(f, ...))
  end
  local n, args = select("#", ...), {...}
  return caught(xpcall(function() return f(unpack(args, 1, n)) end, lib_handler))
end

local scope = frozen(env)
env._G = scope
setmetatable(env, {__index = function(_, name)
  error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 2)
end})

-- Where an error happened: the innermost frame of the user's script.
local KILLED = "ERR Script killed by user with SCRIPT KILL..."
local check = host.hook
local hook

local function handler(err)
  dbg.sethook()  -- a killed script's hook must not fire in here (run sets it again)
  local level, info = 2, nil
  while true do
    local i = dbg.getinfo(level, "Sl")
    if i == nil then break end
    if i.source == "@user_script" or i.source == "@user_function" then info = i break end
    level = level + 1
  end
  if type(err) == "userdata" then err = lib_text(err, 3) or host.unwrap(err) end
  if type(err) ~= "table" then err = {err = "ERR " .. tostring(err)} end
  if info then err.source = info.source err.line = info.currentline end
  return err
end

local function compile(body)
  local f, message = loadstring(body, "@user_script")
  if f == nil then return nil, message end
  setfenv(f, scope)
  return f, false
end

local function run(f, keys, argv, count)
  dbg.sethook(hook, "", count)
  env.KEYS = keys
  env.ARGV = argv
  local ok, result = xpcall(f, handler)  -- always two values: the script may return none
  return ok, result
end

-- Redis 7 functions (scripting/functions.py). A library's code runs once, at FUNCTION LOAD,
-- with only the load API in sight (redis.register_function, redis.log, the LOG_* constants and
-- the version); the functions it registers then run with the globals every script sees.
local function strict(t)
  local view = setmetatable({}, {
    __index = function(_, name)
      local v = t[name]
      if v == nil then
        error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 2)
      end
      return v
    end,
    __newindex = refuse_write, __metatable = false})
  readonly[view] = true
  return view
end

local FLAG_NAMES = {"no-writes", "allow-oom", "allow-stale", "no-cluster", "allow-cross-slot-keys"}
local registered = nil  -- while a library loads: what it registered, in order
local function reg_fail(message) error({err = "ERR " .. message}, 0) end
local function as_string(v)
  local t = type(v)
  if t == "string" or t == "number" then return tostring(v) end
  return nil
end
local function read_flags(t)
  local flags, j = {}, 1
  while true do
    local f = t[j]
    if f == nil then break end
    if type(f) ~= "string" and type(f) ~= "number" then return nil end
    local found = false
    for _, name in ipairs(FLAG_NAMES) do
      if name == tostring(f):lower() then flags[name] = true found = true break end
    end
    if not found then return nil end
    j = j + 1
  end
  local ordered = {}
  for _, name in ipairs(FLAG_NAMES) do
    if flags[name] then ordered[#ordered + 1] = name end
  end
  return ordered
end

local function register_function(...)
  local n = select("#", ...)
  if n < 1 or n > 2 then reg_fail("wrong number of arguments to redis.register_function") end
  local name, callback, flags, description
  if n == 1 then
    local args = ...
    if type(args) ~= "table" then
      reg_fail("calling redis.register_function with a single argument is only applicable to " ..
               "Lua table (representing named arguments).")
    end
    for k, v in pairs(args) do
      if type(k) ~= "string" and type(k) ~= "number" then
        reg_fail("named argument key given to redis.register_function is not a string")
      end
      k = tostring(k)
      if k == "function_name" then
        name = as_string(v)
        if name == nil then
          reg_fail("function_name argument given to redis.register_function must be a string")
        end
      elseif k == "description" then
        description = as_string(v)
        if description == nil then
          reg_fail("description argument given to redis.register_function must be a string")
        end
      elseif k == "callback" then
        if type(v) ~= "function" then
          reg_fail("callback argument given to redis.register_function must be a function")
        end
        callback = v
      elseif k == "flags" then
        if type(v) ~= "table" then
          reg_fail("flags argument to redis.register_function must be a table representing " ..
                   "function flags")
        end
        flags = read_flags(v)
        if flags == nil then reg_fail("unknown flag given") end
      else
        reg_fail("unknown argument given to redis.register_function")
      end
    end
    if name == nil then reg_fail("redis.register_function must get a function name argument") end
    if callback == nil then reg_fail("redis.register_function must get a callback argument") end
  else
    local a, b = ...
    name = as_string(a)
    if name == nil then reg_fail("first argument to redis.register_function must be a string") end
    if type(b) ~= "function" then
      reg_fail("second argument to redis.register_function must be a function")
    end
    callback = b
  end
  if not name:find("^[%w_]+$") then
    reg_fail("Library names can only contain letters, numbers, or underscores(_) and must be " ..
             "at least one character long")
  end
  for _, r in ipairs(registered) do  -- case counts here, not in FCALL (as Redis 7.0)
    if r.name == name then reg_fail("Function already exists in the library") end
  end
  registered[#registered + 1] = {name = name, callback = callback,
                                 flags = flags or {}, description = description}
end

local load_api = strict({
  redis = strict({
    register_function = register_function,
    log = redis.log,
    LOG_DEBUG = redis.LOG_DEBUG, LOG_VERBOSE = redis.LOG_VERBOSE,
    LOG_NOTICE = redis.LOG_NOTICE, LOG_WARNING = redis.LOG_WARNING,
    REDIS_VERSION = redis.REDIS_VERSION, REDIS_VERSION_NUM = redis.REDIS_VERSION_NUM,
  }),
})
local load_check = host.load_hook
local LOAD_TIMEOUT = "ERR FUNCTION LOAD timeout"
local function load_hook()
  if load_check() then error({err = LOAD_TIMEOUT}, 0) end
end

-- Compile and run a library's code: true and the registrations, or false and the error (a
-- string: a compile error; a table: the code failed).
local function load_library(body, count)
  local f, message = loadstring(body, "@user_function")
  if f == nil then return false, message end
  local mt = {__index = load_api, __newindex = refuse_write, __metatable = false}
  local globals = setmetatable({}, mt)
  readonly[globals] = true
  setfenv(f, globals)
  registered = {}
  dbg.sethook(load_hook, "", count)
  local ok, err = xpcall(f, handler)
  dbg.sethook()
  local got = registered
  registered = nil
  if not ok then return false, err end
  mt.__index = scope  -- the functions run with every script's globals
  return true, got
end

-- Run a registered function: FCALL passes its keys and arguments as parameters.
local function call_function(f, keys, argv, count)
  dbg.sethook(hook, "", count)
  local ok, result = xpcall(function() return f(keys, argv) end, handler)
  return ok, result
end

-- The busy check: every N instructions (scripting/busy.py).
function hook()
  if check() then
    dbg.sethook(hook, "", 1)  -- again at once, so a pcall in the script cannot hold it
    error({err = KILLED}, 0)
  end
end
local function arm(count)
  dbg.sethook(hook, "", count)
end

return compile, run, arm, load_library, call_function
