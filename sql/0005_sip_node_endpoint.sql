-- Where each node's SIP proxy listens (written by the sip-proxy service when
-- it starts and when its listeners change): the other nodes forward to it
-- requests for users homed there (FED-6, ARCHITECTURE.md "data flows").
CREATE TABLE IF NOT EXISTS sip_node_endpoint (
  node_id     VARCHAR(64)  NOT NULL PRIMARY KEY,
  host        VARCHAR(255) NOT NULL,
  tcp_port    INT UNSIGNED NULL,
  tls_port    INT UNSIGNED NULL,
  updated_at  TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
) ENGINE=InnoDB;
