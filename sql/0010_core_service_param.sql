-- core: service parameters (MG-3; Cisco IM&P's "Service Parameters"), owned
-- by modules/core (imp/core/service_params.h). One row per parameter an
-- administrator set with `impctl service param set`; a parameter without a
-- row has the default its module declares (ModuleRegistry::addServiceParam).
-- Cluster-wide: every change bumps core_settings.generation in the same
-- transaction, so the running services of every node re-read it (reload()).
CREATE TABLE IF NOT EXISTS core_service_param (
  service     VARCHAR(64)  NOT NULL,
  name        VARCHAR(64)  NOT NULL,
  value       BIGINT       NOT NULL,
  changed_at  TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (service, name)
) ENGINE=InnoDB;
