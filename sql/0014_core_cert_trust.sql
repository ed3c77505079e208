-- core: the trust store cup-trust (TLS-4), the CA certificates trusted
-- cluster-wide to verify peers (the Microsoft servers on the peer-auth
-- listener) and to accept an uploaded service certificate (cup). Every node
-- writes them, with its [tls] ca_file, to a bundle file under its state
-- directory that its TLS listeners use. Times are UTC.
CREATE TABLE IF NOT EXISTS cert_trust (
  fingerprint  CHAR(95)       NOT NULL PRIMARY KEY,     -- SHA-256 of the DER, AB:CD:..
  subject_cn   VARCHAR(255)   NOT NULL,
  subject      VARCHAR(1024)  NOT NULL,
  issuer       VARCHAR(1024)  NOT NULL,
  not_after    VARCHAR(20)    NOT NULL,                 -- UTC, 2036-11-25T06:00:00Z
  pem          TEXT           NOT NULL,
  added_at     DATETIME(3)    NOT NULL,
  KEY cert_trust_cn (subject_cn)
) ENGINE=InnoDB;
