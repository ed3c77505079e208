-- core: nodes of the cluster and the cluster-settings generation counter.
-- Owned by modules/core.

CREATE TABLE IF NOT EXISTS core_node (
  node_id     VARCHAR(64)  NOT NULL PRIMARY KEY,
  role        VARCHAR(16)  NOT NULL,
  hostname    VARCHAR(255) NOT NULL,
  admin_url   VARCHAR(255) NOT NULL,
  version     VARCHAR(32)  NOT NULL,
  started_at  TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  last_seen   TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  state       VARCHAR(16)  NOT NULL DEFAULT 'up'
) ENGINE=InnoDB;

-- One row. Every admin change that running services must apply bumps
-- `generation` in the same transaction (ARCHITECTURE.md, Configuration).
CREATE TABLE IF NOT EXISTS core_settings (
  id          TINYINT      NOT NULL PRIMARY KEY,
  generation  BIGINT UNSIGNED NOT NULL,
  changed_at  TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
) ENGINE=InnoDB;

INSERT IGNORE INTO core_settings (id, generation) VALUES (1, 1);
