-- Strict JSON request bodies at the edge (the Lua filter "tronpay.strict_json"; a matcher in front of it
-- skips requests whose method no checked route has, and native gRPC, without starting this script).
--
-- grpc_json_transcoder drops unknown JSON fields silently (envoyproxy/envoy#46623), so `"name"` instead of
-- `"displayName"` would create an unnamed wallet. This script runs after the buffer filter (the whole body
-- is there) and before the transcoder. For a REST request to a route with a JSON body (ROUTES) it
--   * refuses any query string when the body is the whole request (`body: "*"`): no query parameter can
--     mean anything there, and a key sent as ?private_key= must reach no service and no log;
--   * parses the body with a strict RFC 8259 parser (bounded depth) and checks every object key against the
--     message expected at its position (MESSAGES); an unknown key is a 400 naming its path, never a value.
-- A request it let through is recorded in dynamic metadata ("rpc" = the gRPC path it checked); the guard
-- after the transcoder refuses a REST request the transcoder resolved to a checked RPC without that record
-- (a path form this script did not recognise, or a script error), so a mismatch fails closed.
--
-- envoy/render.py puts the generated data in front of this code:
--   MESSAGES[i] = {name = "pkg.Message", fields = {[json or proto name] = child}} where child is the index
--     of a MESSAGES entry for message-typed fields (singular, repeated or map values: every object found at
--     that position is checked) and 0 for scalars and well-known types (Timestamp, Struct, Any, ...); or
--     {name = "pkg.Message.FooEntry", any = child} for a map of messages: any key, each value checked.
--   ROUTES[i] = {method, pattern (Lua pattern of the path without query), template, rpc (gRPC path),
--     body (the index of the body's MESSAGES entry, 0 for a scalar body), whole (body is "*")}.
--   MAX_DEPTH: nesting bound of arrays and objects.
--   NAMESPACE: the dynamic metadata namespace ("rpc" when checked, "rejected" for the local reply mapper).
--   ERROR_TYPE: the type URL of google.rpc.BadRequest.

local byte, sub, find, char, format, concat = string.byte, string.sub, string.find, string.char,
  string.format, table.concat

-- Resolve the indexes to the entries once per worker (scalars become false).
for _, message in ipairs(MESSAGES) do
  if message.fields then
    for key, index in pairs(message.fields) do
      message.fields[key] = index > 0 and MESSAGES[index]
    end
  else
    message.any = MESSAGES[message.any]
  end
end
for _, route in ipairs(ROUTES) do
  route.body = route.body > 0 and MESSAGES[route.body]
end

local MAX_VIOLATIONS = 10
-- Keys are echoed in errors only when they look like field names; anything else may be data.
local MAX_ECHOED_KEY = 48

-- Parser state for one body (a worker runs one script at a time; every call resets it). The parser
-- walks bytes with string.byte: LuaJIT compiles those loops, while pattern matching would not be.
local text, violations

local function fail(at, problem)
  error({at = at, problem = problem}, 0)
end

local function skip_space(i)
  local c = byte(text, i)
  while c == 32 or c == 10 or c == 13 or c == 9 do
    i = i + 1
    c = byte(text, i)
  end
  return i
end

local function utf8(code)
  if code < 0x80 then return char(code) end
  if code < 0x800 then return char(0xC0 + math.floor(code / 0x40), 0x80 + code % 0x40) end
  if code < 0x10000 then
    return char(0xE0 + math.floor(code / 0x1000), 0x80 + math.floor(code / 0x40) % 0x40, 0x80 + code % 0x40)
  end
  return char(0xF0 + math.floor(code / 0x40000), 0x80 + math.floor(code / 0x1000) % 0x40,
    0x80 + math.floor(code / 0x40) % 0x40, 0x80 + code % 0x40)
end

local function hex4(i)
  if not find(text, "^%x%x%x%x", i) then fail(i, "invalid \\u escape") end
  return tonumber(sub(text, i, i + 3), 16)
end

local ESCAPES = {[34] = '"', [92] = "\\", [47] = "/", [98] = "\b", [102] = "\f", [110] = "\n",
  [114] = "\r", [116] = "\t"}

-- The escape sequence at i (a backslash): (its decoded text, the index after it). Surrogate pairs are
-- combined; a lone surrogate becomes U+FFFD (it cannot be part of a field name either way).
local function escape_at(i)
  local e = byte(text, i + 1)
  if e ~= 117 then -- not \u
    local decoded = e and ESCAPES[e]
    if not decoded then fail(i, "invalid escape") end
    return decoded, i + 2
  end
  local code, after = hex4(i + 2), i + 6
  if code >= 0xD800 and code <= 0xDBFF and find(text, "^\\u[dD][c-fC-F]", after) then
    return utf8(0x10000 + (code - 0xD800) * 0x400 + (hex4(after + 2) - 0xDC00)), after + 6
  end
  if code >= 0xD800 and code <= 0xDFFF then code = 0xFFFD end
  return utf8(code), after
end

-- A string starting after its opening quote: (its decoded value if `decode`, the index after the closing
-- quote). Control characters must be escaped.
local function read_string(i, decode)
  local from, parts = i, nil
  while true do
    local c = byte(text, i)
    if c == 34 then -- the closing quote
      if not decode then return nil, i + 1 end
      if not parts then return sub(text, from, i - 1), i + 1 end
      parts[#parts + 1] = sub(text, from, i - 1)
      return concat(parts), i + 1
    elseif c == 92 then -- a backslash
      local decoded, after = escape_at(i)
      if decode then
        parts = parts or {}
        parts[#parts + 1] = sub(text, from, i - 1)
        parts[#parts + 1] = decoded
      end
      i, from = after, after
    elseif c == nil then
      fail(i, "unterminated string")
    elseif c < 32 then
      fail(i, "unescaped control character in a string")
    else
      i = i + 1
    end
  end
end

local function digits(i) -- the index after a run of digits starting at i
  local c = byte(text, i)
  while c and c >= 48 and c <= 57 do
    i = i + 1
    c = byte(text, i)
  end
  return i
end

local function skip_number(i)
  if byte(text, i) == 45 then i = i + 1 end -- '-'
  local c = byte(text, i)
  if c == 48 then -- a leading 0 stands alone
    i = i + 1
  elseif c and c >= 49 and c <= 57 then
    i = digits(i + 1)
  else
    fail(i, "expected a digit")
  end
  if byte(text, i) == 46 then -- '.'
    local after = digits(i + 1)
    if after == i + 1 then fail(after, "expected a digit") end
    i = after
  end
  c = byte(text, i)
  if c == 101 or c == 69 then -- 'e' / 'E'
    i = i + 1
    c = byte(text, i)
    if c == 43 or c == 45 then i = i + 1 end
    local after = digits(i)
    if after == i then fail(i, "expected a digit") end
    i = after
  end
  return i
end

-- How a key appears in a field path: itself when it looks like a field name, else a placeholder.
local HIDDEN_KEY = "<key not shown>"
local function shown(key)
  if #key <= MAX_ECHOED_KEY and find(key, "^[%a_][%w_]*$") then return key end
  return HIDDEN_KEY
end

-- Field paths are built only when needed (a violation, or a message below): an array element is passed
-- as its array's path and its index.
local function here(path, index)
  if index then return format("%s[%d]", path, index) end
  return path
end

local function child_path(path, index, key)
  local parent = here(path, index)
  return parent == "" and shown(key) or parent .. "." .. shown(key)
end

local value -- forward declaration: value, object and array recurse

-- An object at a position where `message` is expected (nil: nothing to check). Returns the next index.
local function object(i, message, path, index, depth)
  i = skip_space(i + 1)
  if byte(text, i) == 125 then return i + 1 end -- '}'
  while true do
    if byte(text, i) ~= 34 then fail(i, "expected a quoted key") end
    local key
    key, i = read_string(i + 1, message ~= nil)
    i = skip_space(i)
    if byte(text, i) ~= 58 then fail(i, "expected ':'") end
    local child
    if message then
      child = message.any or message.fields[key]
      if child == nil and #violations < MAX_VIOLATIONS then
        violations[#violations + 1] =
          {field = child_path(path, index, key), key = shown(key), message = message.name}
      end
    end
    i = value(skip_space(i + 1), child or nil, child and child_path(path, index, key), nil, depth)
    i = skip_space(i)
    local c = byte(text, i)
    if c == 125 then return i + 1 end
    if c ~= 44 then fail(i, "expected ',' or '}'") end
    i = skip_space(i + 1)
  end
end

-- An array at a message position: each element is checked against the same message.
local function array(i, message, path, index, depth)
  i = skip_space(i + 1)
  if byte(text, i) == 93 then return i + 1 end -- ']'
  local inner = message and here(path, index)
  local n = 0
  while true do
    i = value(i, message, inner, n, depth)
    n = n + 1
    i = skip_space(i)
    local c = byte(text, i)
    if c == 93 then return i + 1 end
    if c ~= 44 then fail(i, "expected ',' or ']'") end
    i = skip_space(i + 1)
  end
end

local LITERALS = {[116] = "true", [102] = "false", [110] = "null"}

-- Any JSON value at i; objects inside are checked against `message` (nil: not checked).
value = function(i, message, path, index, depth)
  local c = byte(text, i)
  if c == 123 or c == 91 then -- '{' '['
    if depth >= MAX_DEPTH then fail(i, format("nested deeper than %d levels", MAX_DEPTH)) end
    if c == 123 then return object(i, message, path, index, depth + 1) end
    return array(i, message, path, index, depth + 1)
  end
  if c == 34 then
    local _, after = read_string(i + 1, false)
    return after
  end
  local literal = LITERALS[c]
  if literal then
    if sub(text, i, i + #literal - 1) ~= literal then fail(i, "expected a JSON value") end
    return i + #literal
  end
  if c == 45 or (c and c >= 48 and c <= 57) then return skip_number(i) end
  fail(i, "expected a JSON value")
end

-- A JSON string literal (the texts built here are ASCII: field names, types, offsets, templates).
local JSON_ESCAPES = {['"'] = '\\"', ["\\"] = "\\\\"}
local function escape(c)
  return JSON_ESCAPES[c] or format("\\u%04x", byte(c))
end
local function quoted(s)
  return '"' .. s:gsub('[%c"\\]', escape) .. '"'
end

-- Checks `body` against `message`: nil when it is fine, else (error message, BadRequest details or nil).
local function check(body, message)
  text, violations = body, {}
  local ok, err = pcall(function()
    local i = skip_space(value(skip_space(1), message, "", nil, 0))
    if i <= #text then fail(i, "data after the JSON value") end
  end)
  text = nil
  if not ok then
    if type(err) ~= "table" then error(err, 0) end -- a bug, not bad input: the guard refuses the request
    return format("malformed JSON body at offset %d: %s", err.at - 1, err.problem)
  end
  if #violations == 0 then return nil end
  local names, descriptions, items = {}, {}, {}
  for n, v in ipairs(violations) do
    names[n] = quoted(v.field)
    descriptions[n] = v.key == HIDDEN_KEY
      and format("a key that is not a field of %s (not shown: it does not look like a field name)", v.message)
      or format('no field "%s" in %s', v.key, v.message)
    items[n] = format('{"field":%s,"description":%s}', names[n], quoted(descriptions[n]))
  end
  local details = format('[{"@type":"%s","fieldViolations":[%s]}]', ERROR_TYPE, concat(items, ","))
  if #violations == 1 then
    return format("unknown field %s in the JSON body (%s)", names[1], descriptions[1]), details
  end
  return format("unknown fields in the JSON body: %s", concat(names, ", ")), details
end

local function reject(handle, message, details)
  handle:streamInfo():dynamicMetadata():set(NAMESPACE, "rejected", true)
  handle:respond({[":status"] = "400", ["content-type"] = "application/json"},
    format('{"code":3,"message":%s,"details":%s}', quoted(message), details or "[]"))
end

-- The content types the transcoder passes through as native gRPC (Envoy's Grpc::Common::hasGrpcContentType:
-- exactly application/grpc, or application/grpc+proto and the like; application/grpc-web is REST).
local function is_grpc(content_type)
  return content_type == "application/grpc"
    or (content_type ~= nil and find(content_type, "^application/grpc%+") ~= nil)
end

function envoy_on_request(handle)
  local headers = handle:headers()
  if is_grpc(headers:get("content-type")) then return end
  local method, target = headers:get(":method"), headers:get(":path")
  local path, query = target:match("^([^?]*)%??(.*)$")
  for _, route in ipairs(ROUTES) do
    if route.method == method and find(path, route.pattern) then
      if route.whole and query ~= "" then
        return reject(handle, format(
          "%s %s takes no query parameters: the JSON body is the whole request", method, route.template))
      end
      local body = handle:body()
      if body and body:length() > 0 then
        local message, details = check(body:getBytes(0, body:length()), route.body or nil)
        if message then return reject(handle, message, details) end
      end
      handle:streamInfo():dynamicMetadata():set(NAMESPACE, "rpc", route.rpc)
      return
    end
  end
end
