-- sip-proxy: the UDP listener ("Default Cisco SIP Proxy UDP Listener") for
-- standard SIMPLE peers. Disabled by default: Lync and OCS do not use UDP.
-- UDP and TCP may share a port number (5060): they are different sockets.
INSERT IGNORE INTO sip_listener (name, enabled, port) VALUES ('udp', FALSE, 5060);
