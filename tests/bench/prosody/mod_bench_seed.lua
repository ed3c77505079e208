-- Bench provisioning for tests/bench/xmpp_bench.sh (B-XMPP-CONN, B-XMPP-MSG):
-- creates the benchmark's accounts and rosters in this host's storage when
-- the module loads (with storage = "memory": in memory), before the server
-- takes connections, and logs how long it took, so that the harness counts
-- provisioning apart from the measurement.
--
-- Options (host section):
--   bench_seed_users    = N        accounts PREFIX1..PREFIXN
--   bench_seed_prefix   = "user"
--   bench_seed_password = "..."
--   bench_seed_contacts = 20       roster size: the user's ring neighbours
--                                  i-10..i-1, i+1..i+10 (mod N), all with
--                                  subscription "both" (RFC 6121 §3), so the
--                                  relation is symmetric.
-- The credentials are those mod_auth_internal_hashed stores (SCRAM-SHA-1
-- StoredKey/ServerKey, salt, iteration count = default_iteration_count),
-- derived once and given to every account: all accounts share the password.
local scram_hashers = require "util.sasl.scram".hashers;
local hex = require "util.hex";
local uuid = require "util.uuid".generate;
local gettime = require "util.time".now;

local users = module:get_option_number("bench_seed_users", 0);
local prefix = module:get_option_string("bench_seed_prefix", "user");
local password = module:get_option_string("bench_seed_password", "bench-password");
local contacts = module:get_option_number("bench_seed_contacts", 20);
local iterations = module:get_option_number("default_iteration_count", 10000);
local host = module.host;

local accounts = module:open_store("accounts");
local rosters = module:open_store("roster");

local t0 = gettime();
local salt = uuid();
local ok, stored_key, server_key = scram_hashers["SHA-1"](password, salt, iterations);
assert(ok, "bench_seed: deriving the SCRAM credentials failed: " .. tostring(stored_key));
stored_key, server_key = hex.encode(stored_key), hex.encode(server_key);

local half = math.floor(math.min(contacts, users - 1) / 2);
for i = 1, users do
	accounts:set(prefix .. i, {
		stored_key = stored_key, server_key = server_key, salt = salt, iteration_count = iterations,
	});
	local roster = { [false] = { version = 1, pending = {} } };
	for d = -half, half do
		if d ~= 0 then
			local j = (i - 1 + d) % users + 1;
			roster[prefix .. j .. "@" .. host] = { subscription = "both", groups = {} };
		end
	end
	assert(rosters:set(prefix .. i, roster));
end
module:log("info", "bench_seed: provisioned %d users with %d contacts each in %.3f s", users, 2 * half, gettime() - t0);

-- SIGUSR2 (mod_posix fires "signal/SIGUSR2"): a full garbage collection, so
-- that the harness can report memory per connection both as the idle
-- server holds it and without the garbage the logins left behind.
module:hook_global("signal/SIGUSR2", function()
	local before = collectgarbage("count");
	collectgarbage("collect");
	collectgarbage("collect");
	module:log("info", "bench_seed: full GC done, Lua heap %.0f KB -> %.0f KB", before, collectgarbage("count"));
end);
