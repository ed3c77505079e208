-- directory: users (PS-5, FED-6 advanced-routing data) and administrator-
-- managed presence domains (PS-3). Owned by modules/directory.

CREATE TABLE IF NOT EXISTS dir_user (
  userid       VARCHAR(128) NOT NULL PRIMARY KEY,
  im_address   VARCHAR(255) NOT NULL,
  im_domain    VARCHAR(255) NOT NULL,
  licensed     BOOLEAN      NOT NULL DEFAULT TRUE,
  home_node    VARCHAR(64)  NULL,
  ms_sip_uri   VARCHAR(255) NULL,
  created_at   TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  changed_at   TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  UNIQUE KEY dir_user_im_address (im_address),
  KEY dir_user_im_domain (im_domain),
  KEY dir_user_ms_sip_uri (ms_sip_uri)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS dir_domain (
  domain       VARCHAR(255) NOT NULL PRIMARY KEY,
  description  VARCHAR(255) NOT NULL DEFAULT '',
  created_at   TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
) ENGINE=InnoDB;
