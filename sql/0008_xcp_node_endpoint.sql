-- Where each node's XMPP client listeners are (written by the
-- xcp-connection-manager service when it starts): a client of a user homed
-- on another node is sent there with the see-other-host stream error
-- (RFC 6120 §4.9.3.19; issue 16, deliverable 2).
CREATE TABLE IF NOT EXISTS xcp_node_endpoint (
  node_id     VARCHAR(64)  NOT NULL PRIMARY KEY,
  host        VARCHAR(255) NOT NULL,
  client_port INT UNSIGNED NOT NULL,
  tls_port    INT UNSIGNED NULL,
  updated_at  TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
) ENGINE=InnoDB;
