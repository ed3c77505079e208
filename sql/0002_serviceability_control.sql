-- serviceability: per-node service activation (SV-3), trace settings (SV-4),
-- published service states and remote control requests.
-- Owned by modules/serviceability.

-- A row overrides the role's default for one service on one node.
CREATE TABLE IF NOT EXISTS svc_activation (
  node_id     VARCHAR(64)  NOT NULL,
  service     VARCHAR(64)  NOT NULL,
  active      BOOLEAN      NOT NULL,
  changed_at  TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (node_id, service)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS svc_trace (
  node_id     VARCHAR(64)  NOT NULL,
  service     VARCHAR(64)  NOT NULL,
  enabled     BOOLEAN      NOT NULL,
  level       VARCHAR(16)  NOT NULL,
  flags       VARCHAR(512) NOT NULL DEFAULT '',
  changed_at  TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (node_id, service)
) ENGINE=InnoDB;

-- Written by each node's ris-collector every heartbeat.
CREATE TABLE IF NOT EXISTS svc_node_service (
  node_id     VARCHAR(64)  NOT NULL,
  service     VARCHAR(64)  NOT NULL,
  active      BOOLEAN      NOT NULL,
  state       VARCHAR(16)  NOT NULL,
  restarts    BIGINT UNSIGNED NOT NULL DEFAULT 0,
  uptime_s    BIGINT       NOT NULL DEFAULT 0,
  detail      VARCHAR(512) NOT NULL DEFAULT '',
  reported_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (node_id, service)
) ENGINE=InnoDB;

-- start/stop/restart requested for another node; carried out by that
-- node's serviceability service.
CREATE TABLE IF NOT EXISTS svc_command (
  id           BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  node_id      VARCHAR(64)  NOT NULL,
  service      VARCHAR(64)  NOT NULL,
  action       VARCHAR(16)  NOT NULL,
  state        VARCHAR(16)  NOT NULL DEFAULT 'pending',
  result       VARCHAR(1024) NOT NULL DEFAULT '',
  requested_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  done_at      TIMESTAMP(3) NULL,
  KEY svc_command_pending (node_id, state)
) ENGINE=InnoDB;
