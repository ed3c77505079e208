-- federation-cm: federated availability subscriptions (AV-3), owned by
-- modules/federation-cm. One row per subscription a node holds, outgoing
-- (a native watcher of a Microsoft user) or incoming (a Microsoft watcher of
-- a native user), with the SIP dialog that carries it: a restarted node
-- refreshes the outgoing ones in their dialogs and NOTIFYs the Microsoft
-- watchers again, instead of leaving contacts without availability until
-- the next refresh (up to about two hours in the original product).
CREATE TABLE IF NOT EXISTS fcm_subscription (
  node_id        VARCHAR(64)   NOT NULL,
  direction      CHAR(3)       NOT NULL,   -- 'out' or 'in'
  native_jid     VARCHAR(255)  NOT NULL,
  remote_uri     VARCHAR(255)  NOT NULL,
  state          VARCHAR(16)   NOT NULL,
  call_id        VARCHAR(255)  NOT NULL DEFAULT '',
  local_tag      VARCHAR(128)  NOT NULL DEFAULT '',
  remote_tag     VARCHAR(128)  NOT NULL DEFAULT '',
  remote_target  VARCHAR(1024) NOT NULL DEFAULT '',
  route_set      TEXT          NULL,
  local_cseq     INT UNSIGNED  NOT NULL DEFAULT 0,
  remote_cseq    INT UNSIGNED  NOT NULL DEFAULT 0,
  expires_at     BIGINT        NOT NULL DEFAULT 0,   -- unix seconds
  updated_at     TIMESTAMP(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (node_id, direction, native_jid, remote_uri),
  KEY fcm_subscription_native (native_jid)
) ENGINE=InnoDB;

-- Where each node's federation connection manager listens (written by the
-- federation-cm service when it starts; a change bumps the settings
-- generation): the node's SIP proxy forwards there the requests its routing
-- decision gives to a user homed on the node (FED-6), and trusts requests
-- coming from it as its own.
CREATE TABLE IF NOT EXISTS fcm_node_endpoint (
  node_id     VARCHAR(64)  NOT NULL PRIMARY KEY,
  host        VARCHAR(255) NOT NULL,
  port        INT UNSIGNED NOT NULL,
  updated_at  TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
) ENGINE=InnoDB;

-- The kind of SIP system on the other side of each federated domain
-- (issue 17, deliverable 6): 'lync' (Microsoft Lync / OCS: session-mode IM,
-- KeyboardActivity typing; the default for a domain not listed) or 'simple'
-- (a standard SIMPLE presence server such as Kamailio: page-mode MESSAGE,
-- RFC 3428, and RFC 3994 isComposing). Changed with impctl federation peer
-- set; every change bumps the settings generation.
CREATE TABLE IF NOT EXISTS fcm_domain_peer (
  domain      VARCHAR(255) NOT NULL PRIMARY KEY,
  peer_type   VARCHAR(16)  NOT NULL,
  changed_at  TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
) ENGINE=InnoDB;
