-- xcp-router: the data of the XMPP router and session manager (issue 16):
-- SCRAM credentials, rosters and their versions (RFC 6121 §2, §2.6, §3),
-- offline messages (IM-5), remembered privacy decisions (AV-1, PS-2), the
-- XEP-0191 block list, and the cluster-wide presence settings (PS-1, PS-2).
-- Owned by modules/xcp-router. Text columns use the schema's default
-- character set, utf8mb4 with utf8mb4_bin (core/mysql_database.cpp creates the
-- schema so): JIDs arrive normalised (RFC 7622), so binary comparison is right.
-- Users are keyed by their directory user id; deleting a user deletes all of it.
-- Indexed JIDs are at most 640 characters: with the 128-character user id that
-- is InnoDB's 3072-byte key limit in utf8mb4; the stores refuse longer ones.

-- SCRAM credentials (RFC 5802 §3): salted keys only, never a password. Binary
-- values are stored base64-encoded.
CREATE TABLE IF NOT EXISTS xcp_user_credential (
  userid      VARCHAR(128) NOT NULL,
  mechanism   VARCHAR(32)  NOT NULL,
  salt        VARCHAR(128) NOT NULL,
  iterations  INT UNSIGNED NOT NULL,
  stored_key  VARCHAR(128) NOT NULL,
  server_key  VARCHAR(128) NOT NULL,
  changed_at  TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (userid, mechanism),
  CONSTRAINT xcp_user_credential_user FOREIGN KEY (userid) REFERENCES dir_user (userid) ON DELETE CASCADE
) ENGINE=InnoDB;

-- The roster version of each user (RFC 6121 §2.6): bumped by every change
-- of the user's roster; items and tombstones carry the version that made them.
CREATE TABLE IF NOT EXISTS xcp_roster_version (
  owner       VARCHAR(128)    NOT NULL PRIMARY KEY,
  version     BIGINT UNSIGNED NOT NULL,
  CONSTRAINT xcp_roster_version_user FOREIGN KEY (owner) REFERENCES dir_user (userid) ON DELETE CASCADE
) ENGINE=InnoDB;

-- Roster items (RFC 6121 §2.1): subscription none|to|from|both, ask = pending
-- out, pending_in with the status text of the subscribe stanza (§3.1.3),
-- approved = pre-approval (§3.4). A removed item stays as a tombstone
-- (removed = TRUE, its removal version) so a client with an older version gets
-- the removal as a push (§2.6.3).
CREATE TABLE IF NOT EXISTS xcp_roster_item (
  id                BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  owner             VARCHAR(128)    NOT NULL,
  contact           VARCHAR(640)    NOT NULL,
  name              VARCHAR(1023)   NOT NULL DEFAULT '',
  subscription      VARCHAR(4)      NOT NULL DEFAULT 'none',
  ask               BOOLEAN         NOT NULL DEFAULT FALSE,
  pending_in        BOOLEAN         NOT NULL DEFAULT FALSE,
  pending_in_status VARCHAR(1024)   NOT NULL DEFAULT '',
  approved          BOOLEAN         NOT NULL DEFAULT FALSE,
  pending_only      BOOLEAN         NOT NULL DEFAULT FALSE,
  removed           BOOLEAN         NOT NULL DEFAULT FALSE,
  version           BIGINT UNSIGNED NOT NULL,
  UNIQUE KEY xcp_roster_item_contact (owner, contact),
  KEY xcp_roster_item_version (owner, version),
  CONSTRAINT xcp_roster_item_user FOREIGN KEY (owner) REFERENCES dir_user (userid) ON DELETE CASCADE
) ENGINE=InnoDB;

-- The groups of a roster item (RFC 6121 §2.1.2.3).
CREATE TABLE IF NOT EXISTS xcp_roster_group (
  item_id     BIGINT UNSIGNED NOT NULL,
  group_name  VARCHAR(640)    NOT NULL,
  PRIMARY KEY (item_id, group_name),
  CONSTRAINT xcp_roster_group_item FOREIGN KEY (item_id) REFERENCES xcp_roster_item (id) ON DELETE CASCADE
) ENGINE=InnoDB;

-- Messages kept for an offline user (IM-5), delivered in id order at the next
-- login and deleted only after delivery.
CREATE TABLE IF NOT EXISTS xcp_offline_message (
  id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  owner       VARCHAR(128)  NOT NULL,
  sender      VARCHAR(3071) NOT NULL,
  stanza      MEDIUMTEXT    NOT NULL,
  bytes       INT UNSIGNED  NOT NULL,
  stamp       TIMESTAMP(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  KEY xcp_offline_message_owner (owner, id),
  CONSTRAINT xcp_offline_message_user FOREIGN KEY (owner) REFERENCES dir_user (userid) ON DELETE CASCADE
) ENGINE=InnoDB;

-- Earlier allow/block decisions of a user about a watcher (AV-1, PS-2).
CREATE TABLE IF NOT EXISTS xcp_privacy_decision (
  owner       VARCHAR(128)  NOT NULL,
  watcher     VARCHAR(640)  NOT NULL,
  decision    VARCHAR(8)    NOT NULL,
  decided_at  TIMESTAMP(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (owner, watcher),
  CONSTRAINT xcp_privacy_decision_user FOREIGN KEY (owner) REFERENCES dir_user (userid) ON DELETE CASCADE
) ENGINE=InnoDB;

-- The XEP-0191 block list: JIDs (domain, bare or full) a user blocks.
CREATE TABLE IF NOT EXISTS xcp_block (
  owner       VARCHAR(128)  NOT NULL,
  blocked     VARCHAR(640)  NOT NULL,
  created_at  TIMESTAMP(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (owner, blocked),
  CONSTRAINT xcp_block_user FOREIGN KEY (owner) REFERENCES dir_user (userid) ON DELETE CASCADE
) ENGINE=InnoDB;

-- Cluster-wide presence settings, one row (id = 1): PS-1 maximum contacts and
-- watchers per user (0 = no limit), PS-2 auto-approval, and the offline store
-- quota in messages per user (0 = no limit). Every change bumps
-- core_settings.generation in the same transaction, so the running router
-- applies it live.
CREATE TABLE IF NOT EXISTS xcp_presence_settings (
  id             TINYINT      NOT NULL PRIMARY KEY,
  max_contacts   INT UNSIGNED NOT NULL DEFAULT 200,
  max_watchers   INT UNSIGNED NOT NULL DEFAULT 200,
  auto_approve   BOOLEAN      NOT NULL DEFAULT TRUE,
  offline_quota  INT UNSIGNED NOT NULL DEFAULT 1000,
  changed_at     TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
) ENGINE=InnoDB;

INSERT IGNORE INTO xcp_presence_settings (id) VALUES (1);
