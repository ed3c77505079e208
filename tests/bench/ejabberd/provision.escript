%% -*- erlang -*-
%% Bench provisioning for tests/bench/xmpp_bench.sh (B-XMPP-CONN, B-XMPP-MSG):
%%
%%   escript provision.escript NODE COOKIE HOST USERS PREFIX PASSWORD CONTACTS
%%
%% Connects to the running ejabberd node NODE over Erlang distribution
%% (loopback) and:
%% 1. turns the tables the bench fills into RAM-only Mnesia tables
%%    (ram_copies: passwd, roster, roster_version, offline_msg). ejabberd
%%    23.01 applies a custom ejabberd.schema only to tables that already
%%    exist, so the bench changes the copy type of the freshly created ones;
%% 2. registers PREFIX1 with PASSWORD through ejabberd_auth:try_register/3
%%    (what `ejabberdctl register` calls; the password is stored as the
%%    configuration says: SCRAM, 4096 iterations), then gives
%%    PREFIX2..PREFIX<USERS> copies of that `passwd` record under their own
%%    key (same salt and keys: every account has the same password), which
%%    saves deriving the same SCRAM keys USERS times;
%% 3. writes each user's roster: its ring neighbours i-C/2..i-1,
%%    i+1..i+C/2 (mod USERS), subscription "both", one Mnesia record per
%%    item (mod_roster's `roster` record, built from the table's attribute
%%    list, which must be the one this script knows), in batches.
%% Prints one line "provisioned users=N contacts=C secs=S storage=..." and
%% exits 0; any failure is printed and exits 1.
-mode(compile).

main([Node0, Cookie, Host0, Users0, Prefix, Password0, Contacts0]) ->
    Node = list_to_atom(Node0),
    Me = list_to_atom("xmppbench-provision-" ++ os:getpid() ++ "@localhost"),
    {ok, _} = net_kernel:start([Me, shortnames]),
    erlang:set_cookie(node(), list_to_atom(Cookie)),
    pong = net_adm:ping(Node),
    Users = list_to_integer(Users0),
    Half = min(list_to_integer(Contacts0), Users - 1) div 2,
    Host = list_to_binary(Host0),
    Password = list_to_binary(Password0),
    Tables = [passwd, roster, roster_version, offline_msg],
    T0 = erlang:monotonic_time(millisecond),
    try
        wait_tables(Node, Tables, T0 + 120000),
        lists:foreach(
          fun(T) ->
              case call(Node, mnesia, table_info, [T, storage_type]) of
                  ram_copies -> ok;
                  _ -> {atomic, ok} = call(Node, mnesia, change_table_copy_type, [T, Node, ram_copies])
              end
          end, Tables),
        Name = fun(I) -> list_to_binary(Prefix ++ integer_to_list(I)) end,
        case call(Node, ejabberd_auth, try_register, [Name(1), Host, Password]) of
            ok -> ok;
            Err -> throw({register, Name(1), Err})
        end,
        Key1 = {Name(1), Host},
        Rec1 = case call(Node, mnesia, dirty_read, [passwd, Key1]) of
                   [R] when element(2, R) == Key1 -> R;
                   Other0 -> throw({passwd_record, Other0})
               end,
        write(Node, [setelement(2, Rec1, {Name(I), Host}) || I <- lists:seq(2, Users)]),
        PCount = call(Node, mnesia, table_info, [passwd, size]),
        PCount == Users orelse throw({passwd_size, PCount, expected, Users}),
        Attrs = [usj, us, jid, name, subscription, ask, groups, askmessage, xs],
        case call(Node, mnesia, table_info, [roster, attributes]) of
            Attrs -> ok;
            Other -> throw({roster_attributes, Other, expected, Attrs})
        end,
        Items = [begin
                     J = ((I - 1 + D) rem Users + Users) rem Users + 1,
                     U = Name(I), C = Name(J),
                     {roster, {U, Host, {C, Host, <<>>}}, {U, Host}, {C, Host, <<>>}, C, both, none,
                      [<<"bench">>], <<>>, []}
                 end || I <- lists:seq(1, Users), D <- lists:seq(-Half, Half), D =/= 0],
        write(Node, Items),
        Storage = [{T, call(Node, mnesia, table_info, [T, storage_type])} || T <- Tables],
        Count = call(Node, mnesia, table_info, [roster, size]),
        Count == length(Items) orelse throw({roster_size, Count, expected, length(Items)}),
        Secs = (erlang:monotonic_time(millisecond) - T0) / 1000,
        io:format("provisioned users=~b contacts=~b secs=~.3f storage=~s~n",
                  [Users, 2 * Half, Secs,
                   string:join([atom_to_list(T) ++ ":" ++ atom_to_list(S) || {T, S} <- Storage], ",")]),
        halt(0)
    catch
        throw:Why ->
            io:format("provisioning failed: ~p~n", [Why]),
            halt(1);
        error:Why:Stack ->
            io:format("provisioning failed: ~p ~p~n", [Why, Stack]),
            halt(1)
    end;
main(_) ->
    io:format("usage: provision.escript NODE COOKIE HOST USERS PREFIX PASSWORD CONTACTS~n"),
    halt(2).

call(Node, M, F, A) ->
    case rpc:call(Node, M, F, A, 600000) of
        {badrpc, Why} -> throw({badrpc, M, F, Why});
        R -> R
    end.

%% ejabberd opens its listeners before every module has created its tables
%% (on a busy machine the script can get there first): wait, at most until
%% Deadline, until the tables provisioned here exist, then until they are
%% loaded.
wait_tables(Node, Tables, Deadline) ->
    case Tables -- call(Node, mnesia, system_info, [tables]) of
        [] ->
            case call(Node, mnesia, wait_for_tables, [Tables, 60000]) of
                ok -> ok;
                Other -> throw({wait_for_tables, Other})
            end;
        Missing ->
            erlang:monotonic_time(millisecond) < Deadline orelse throw({tables_missing, Missing}),
            timer:sleep(100),
            wait_tables(Node, Tables, Deadline)
    end.

write(_Node, []) -> ok;
write(Node, Items) ->
    {Batch, Rest} = lists:split(min(5000, length(Items)), Items),
    ok = call(Node, lists, foreach, [fun mnesia:dirty_write/1, Batch]),
    write(Node, Rest).
