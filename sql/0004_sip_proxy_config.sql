-- sip-proxy: cluster-wide SIP Proxy settings — partitioned intradomain
-- federation (FED-4..6), application listeners (TLS-1), TLS peer subjects and
-- contexts (TLS-2, TLS-3), incoming ACL (RT-7) and static routes (RT-2, RT-3).
-- Owned by modules/sip-proxy. Every change bumps core_settings.generation in
-- the same transaction, so running proxies apply it live.

-- One row (id = 1).
CREATE TABLE IF NOT EXISTS sip_federation (
  id                    TINYINT      NOT NULL PRIMARY KEY,
  enabled               BOOLEAN      NOT NULL DEFAULT FALSE,
  routing_mode          VARCHAR(16)  NOT NULL DEFAULT 'basic',
  email_for_interdomain BOOLEAN      NOT NULL DEFAULT FALSE,
  changed_at            TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
) ENGINE=InnoDB;

INSERT IGNORE INTO sip_federation (id) VALUES (1);

-- What changed in sip_federation, and when (newest last).
CREATE TABLE IF NOT EXISTS sip_federation_change (
  id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  changed_at  TIMESTAMP(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  what        VARCHAR(512)  NOT NULL
) ENGINE=InnoDB;

-- Inter-cluster peers (RT-6). Created empty here because advanced routing
-- mode (FED-6) must be refused while any row exists; the inter-cluster issue
-- owns its columns beyond these and fills it (and must refuse a new peer
-- while sip_federation.routing_mode = 'advanced').
CREATE TABLE IF NOT EXISTS sip_intercluster_peer (
  id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  address     VARCHAR(255) NOT NULL,
  created_at  TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  UNIQUE KEY sip_intercluster_peer_address (address)
) ENGINE=InnoDB;

-- The three application listeners of the SIP Proxy (TLS-1).
CREATE TABLE IF NOT EXISTS sip_listener (
  name        VARCHAR(32)  NOT NULL PRIMARY KEY,
  enabled     BOOLEAN      NOT NULL DEFAULT TRUE,
  port        INT UNSIGNED NOT NULL,
  changed_at  TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
) ENGINE=InnoDB;

INSERT IGNORE INTO sip_listener (name, enabled, port) VALUES
  ('tcp', TRUE, 5060), ('tls-server-auth', TRUE, 5061), ('tls-peer-auth', TRUE, 5062);

-- Certificate subject common names accepted by peer-auth TLS (TLS-2).
CREATE TABLE IF NOT EXISTS sip_tls_peer_subject (
  subject_cn  VARCHAR(255) NOT NULL PRIMARY KEY,
  description VARCHAR(255) NOT NULL DEFAULT '',
  created_at  TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
) ENGINE=InnoDB;

-- Named TLS contexts (TLS-3). `ciphers` is one OpenSSL cipher string; its
-- TLS_* elements are TLS 1.3 suites, the rest the TLS <= 1.2 cipher list.
CREATE TABLE IF NOT EXISTS sip_tls_context (
  name                    VARCHAR(64)   NOT NULL PRIMARY KEY,
  display_name            VARCHAR(255)  NOT NULL,
  ciphers                 VARCHAR(2048) NOT NULL,
  min_version             VARCHAR(8)    NOT NULL DEFAULT '1.2',
  max_version             VARCHAR(8)    NOT NULL DEFAULT '1.3',
  disable_empty_fragments BOOLEAN       NOT NULL DEFAULT TRUE,
  changed_at              TIMESTAMP(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
) ENGINE=InnoDB;

INSERT IGNORE INTO sip_tls_context (name, display_name, ciphers) VALUES
  ('default-server', 'Default Cisco UP SIP Proxy TLS Context', 'HIGH:!aNULL:!MD5'),
  ('peer-auth', 'Default Cisco UP SIP Proxy Peer Auth TLS Context', 'HIGH:!aNULL:!MD5');

-- Peer subjects selected by a context; a selected subject cannot be deleted.
CREATE TABLE IF NOT EXISTS sip_tls_context_peer (
  context_name VARCHAR(64)  NOT NULL,
  subject_cn   VARCHAR(255) NOT NULL,
  PRIMARY KEY (context_name, subject_cn),
  KEY sip_tls_context_peer_subject (subject_cn),
  CONSTRAINT sip_tls_context_peer_ctx FOREIGN KEY (context_name) REFERENCES sip_tls_context (name) ON DELETE CASCADE,
  CONSTRAINT sip_tls_context_peer_cn FOREIGN KEY (subject_cn) REFERENCES sip_tls_peer_subject (subject_cn)
) ENGINE=InnoDB;

-- Incoming ACL (RT-7): 'all', a canonical IP address, or a lower-case DNS
-- name (matches the name and every name below it).
CREATE TABLE IF NOT EXISTS sip_acl (
  id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  pattern     VARCHAR(255) NOT NULL,
  kind        VARCHAR(8)   NOT NULL,
  description VARCHAR(255) NOT NULL DEFAULT '',
  created_at  TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  UNIQUE KEY sip_acl_pattern (pattern)
) ENGINE=InnoDB;

-- Static routes (RT-2, RT-3). Domain patterns are stored in the canonical
-- reversed form ('.com.example.*').
CREATE TABLE IF NOT EXISTS sip_static_route (
  id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  pattern     VARCHAR(255) NOT NULL,
  route_type  VARCHAR(8)   NOT NULL,
  next_hop    VARCHAR(255) NOT NULL,
  port        INT UNSIGNED NOT NULL,
  transport   VARCHAR(4)   NOT NULL,
  priority    INT UNSIGNED NOT NULL DEFAULT 1,
  weight      INT UNSIGNED NOT NULL DEFAULT 1,
  created_at  TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  UNIQUE KEY sip_static_route_hop (route_type, pattern, next_hop, port, transport),
  UNIQUE KEY sip_static_route_priority (route_type, pattern, priority)
) ENGINE=InnoDB;
