-- bulk-provisioning (issue 18): the Bulk Provisioning Service's files, jobs
-- and result logs, owned by modules/bulk-provisioning. Everything is in the
-- cluster database, so any node shows any job and its log (MG-10; the
-- original shows them only on the publisher).

-- Uploaded CSV files (MG-7, MG-9), each for one kind of job: 'import'
-- (target "Contact Lists", transaction "Import Users' Contacts – Custom
-- File") or 'rename' (target "Contacts", transaction "Rename Contacts –
-- Custom File"). The content is kept in parts of at most 1 MiB
-- (bat_file_part), under any server's max_allowed_packet; a file is usable
-- once every part arrived and the whole matched its SHA-256 (complete).
CREATE TABLE IF NOT EXISTS bat_file (
  id           BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name         VARCHAR(255)    NOT NULL,
  kind         VARCHAR(8)      NOT NULL,
  size         BIGINT UNSIGNED NOT NULL,
  sha256       CHAR(64)        NOT NULL,
  received     BIGINT UNSIGNED NOT NULL DEFAULT 0,
  complete     BOOLEAN         NOT NULL DEFAULT FALSE,
  uploaded_at  DATETIME(3)     NOT NULL,                  -- UTC
  UNIQUE KEY bat_file_name (name)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS bat_file_part (
  file_id  BIGINT UNSIGNED NOT NULL,
  seq      INT UNSIGNED    NOT NULL,
  data     MEDIUMBLOB      NOT NULL,
  PRIMARY KEY (file_id, seq),
  CONSTRAINT bat_file_part_file FOREIGN KEY (file_id) REFERENCES bat_file (id) ON DELETE CASCADE
) ENGINE=InnoDB;

-- Jobs (MG-10): run now or at run_at (UTC), by the node whose
-- bulk-provisioning service claimed it (node_id). Every batch of rows
-- commits its roster changes, its log entries and the checkpoint below in
-- one transaction: a job resumed after a restart starts at the checkpoint
-- and applies each row exactly once.
CREATE TABLE IF NOT EXISTS bat_job (
  id               BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  kind             VARCHAR(8)      NOT NULL,               -- import or rename
  file_id          BIGINT UNSIGNED NULL,
  file_name        VARCHAR(255)    NOT NULL,
  status           VARCHAR(12)     NOT NULL,               -- pending running completed failed cancelled
  run_at           DATETIME(3)     NULL,
  created_at       DATETIME(3)     NOT NULL,               -- UTC, like every time here
  started_at       DATETIME(3)     NULL,
  ended_at         DATETIME(3)     NULL,
  node_id          VARCHAR(64)     NOT NULL DEFAULT '',
  cancel_requested BOOLEAN         NOT NULL DEFAULT FALSE,
  detail           VARCHAR(1024)   NOT NULL DEFAULT '',
  rows_total       BIGINT UNSIGNED NOT NULL DEFAULT 0,
  rows_done        BIGINT UNSIGNED NOT NULL DEFAULT 0,
  ck_offset        BIGINT UNSIGNED NOT NULL DEFAULT 0,     -- where the next row starts in the file
  ck_line          BIGINT UNSIGNED NOT NULL DEFAULT 1,
  applied          BIGINT UNSIGNED NOT NULL DEFAULT 0,     -- contacts imported, or contact lists updated
  ignored          BIGINT UNSIGNED NOT NULL DEFAULT 0,     -- rows (import) or records (rename) ignored
  internal_errors  BIGINT UNSIGNED NOT NULL DEFAULT 0,
  not_processed    BIGINT UNSIGNED NOT NULL DEFAULT 0,     -- rows left when an error or a cancel ended the job
  lists_failed     BIGINT UNSIGNED NOT NULL DEFAULT 0,     -- rename: contact lists not updated
  retrieved        BIGINT UNSIGNED NOT NULL DEFAULT 0,     -- rename: contacts retrieved
  notified         BIGINT UNSIGNED NOT NULL DEFAULT 0,     -- users sent a roster push
  -- not_notified: users offline at the change
  not_notified     BIGINT UNSIGNED NOT NULL DEFAULT 0,
  KEY bat_job_status (status, run_at),
  CONSTRAINT bat_job_file FOREIGN KEY (file_id) REFERENCES bat_file (id) ON DELETE SET NULL
) ENGINE=InnoDB;

-- The entries of a job's result log that are not counts: each row or record
-- ignored or failed, with its line and reason (listed at the end of the
-- log), written with the batch that met them.
CREATE TABLE IF NOT EXISTS bat_job_entry (
  job_id   BIGINT UNSIGNED NOT NULL,
  seq      BIGINT UNSIGNED NOT NULL,
  kind     VARCHAR(8)      NOT NULL,                       -- ignored, error or note
  line     BIGINT UNSIGNED NOT NULL,
  text     VARCHAR(2048)   NOT NULL,
  PRIMARY KEY (job_id, seq),
  CONSTRAINT bat_job_entry_job FOREIGN KEY (job_id) REFERENCES bat_job (id) ON DELETE CASCADE
) ENGINE=InnoDB;
